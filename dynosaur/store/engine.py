"""Connections to the store: the configured Postgres server, or the embedded one."""

from __future__ import annotations

import threading

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url

from dynosaur.errors import StoreError
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
    parsed = make_url(url)
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
        raise StoreError(f"cannot connect to the store at {where}: {exc.orig}") from exc
