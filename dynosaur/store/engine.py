"""Connections to the store: the configured Postgres server, or the embedded one."""

from __future__ import annotations

import re
import threading

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url

from dynosaur.errors import StoreError, UsageError
from dynosaur.settings import Settings
from dynosaur.store.embedded import embedded_url

_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def database_url(settings: Settings) -> str:
    """The store's URL: ``DYNOSAUR_DATABASE_URL`` or the embedded server's (started on demand)."""
    if settings.database_url:
        return settings.database_url
    return embedded_url(settings.embedded_pgdata)


def sqlalchemy_url(url: str) -> URL:
    """Parse ``url`` and pin the psycopg2 driver (``postgres://`` and bare URLs are accepted)."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    try:
        parsed = make_url(url)
    except (sa.exc.ArgumentError, ValueError):
        raise UsageError(
            "DYNOSAUR_DATABASE_URL is not a database URL "
            "(expected postgresql://USER@HOST:PORT/DATABASE, with an optional :PASSWORD)"
        ) from None
    if parsed.get_backend_name() != "postgresql":
        raise StoreError(f"the store must be Postgres, got a {parsed.get_backend_name()!r} URL")
    return parsed.set(drivername="postgresql+psycopg2")


def libpq_url(url: str) -> str:
    """The same URL without a SQLAlchemy driver suffix, as libpq and yoyo expect it."""
    return sqlalchemy_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def get_engine(settings: Settings) -> Engine:
    """A pooled engine for the store, one per URL per process."""
    url = database_url(settings)
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            engine = sa.create_engine(
                sqlalchemy_url(url),
                pool_pre_ping=True,
                pool_size=5,
                max_overflow=10,
                connect_args={"application_name": "dynosaur"},
            )
            _engines[url] = engine
    return engine


def dispose_engines() -> None:
    """Close every pooled connection (tests, and before a fork)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def check_connection(engine: Engine) -> None:
    """Raise a :class:`StoreError` that names the server when it cannot be reached."""
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:
        where = engine.url.render_as_string(hide_password=True)
        detail = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else "no answer"
        raise StoreError(
            f"cannot connect to the store at {where}: {detail}. Check DYNOSAUR_DATABASE_URL "
            "and that Postgres runs, then run again"
        ) from exc


def recreate_database(settings: Settings, name: str) -> str:
    """Drop and create database ``name`` on the store's server; returns its URL.

    Refuses the store's own database and names that are not plain identifiers.
    """
    server = sqlalchemy_url(database_url(settings))
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
        raise UsageError(f"{name!r} is not a plain database name ([a-z0-9_], 63 at most)")
    if settings.database_url and name == server.database:
        raise UsageError(
            f"{name!r} is your store's own database, which this would drop: "
            "give another name (--database)"
        )
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.DBAPIError as exc:
        raise StoreError(
            f"could not recreate the database {name!r} on "
            f"{server.render_as_string(hide_password=True)}: {exc.orig}"
        ) from exc
    finally:
        admin.dispose()
    return server.set(database=name).render_as_string(hide_password=False)
