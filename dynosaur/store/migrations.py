"""Schema management: ordered SQL migrations (applied by yoyo), then views, reasons and roles.

``sql/migrations/*.sql`` are applied once each, in file order, and recorded by yoyo in
``_yoyo_migration``. ``sql/views/*.sql`` are definitions, re-created on every upgrade, so a view
changes by editing its file. The ``reason`` table is synchronised from :mod:`dynosaur.reasons`.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dynosaur.errors import LockTimeout, StoreError
from dynosaur.reasons import catalogue
from dynosaur.store.engine import libpq_url

# Base tables whose row counts `dynosaur db status` reports, in data-path order.
TABLES = (
    "hub_dataset",
    "dataset_config",
    "generation",
    "llm_call",
    "task",
    "instance",
    "batch",
)
_VIEW_NAME = re.compile(r"CREATE\s+(?:OR\s+REPLACE\s+)?VIEW\s+([a-z_][a-z0-9_]*)", re.IGNORECASE)
# Serialises view/role (re)creation between processes that upgrade at the same time.
_UPGRADE_LOCK_KEY = 0x44796E6F
# Held (session level) by the one process applying migrations; the server frees it if it dies.
_MIGRATE_LOCK_KEY = 0x44796E70
log = logging.getLogger(__name__)


def sql_dir() -> Path:
    """The ``sql/`` folder: packaged inside the wheel, or at the top of a source checkout."""
    packaged = resources.files("dynosaur") / "sql"
    if packaged.is_dir():
        return Path(str(packaged))
    checkout = Path(__file__).resolve().parents[2] / "sql"
    if checkout.is_dir():
        return checkout
    raise StoreError("the sql/ folder with the migrations is missing from this installation")


@dataclass
class SchemaStatus:
    """What `dynosaur db status` shows."""

    url: str
    applied: list[str]
    pending: list[str]
    table_counts: dict[str, int] = field(default_factory=dict)
    views: list[str] = field(default_factory=list)

    @property
    def version(self) -> str | None:
        """Id of the newest applied migration (the schema version)."""
        return self.applied[-1] if self.applied else None


def _backend(engine: Engine):
    from yoyo import get_backend  # only when migrating: a store that is up to date never needs it

    return get_backend(libpq_url(engine.url.render_as_string(hide_password=False)))


def _migrations():
    from yoyo import read_migrations

    return read_migrations(str(sql_dir() / "migrations"))


def migration_ids() -> list[str]:
    """Ids of the project's migrations (file names without ``.sql``), in file order."""
    return [p.stem for p in sorted((sql_dir() / "migrations").glob("*.sql"))]


def _hash(migration_id: str) -> str:
    """The key yoyo stores for an applied migration (sha256 of its id)."""
    return hashlib.sha256(migration_id.encode("utf-8")).hexdigest()


def view_files() -> list[Path]:
    """View definition files in the order they are applied."""
    return sorted((sql_dir() / "views").glob("*.sql"))


def view_names() -> list[str]:
    """Names of the views the project defines (the read-only role's whole world)."""
    names: list[str] = []
    for path in view_files():
        names.extend(_VIEW_NAME.findall(path.read_text()))
    return names


def _definitions_fingerprint(reader_role: str) -> str:
    digest = hashlib.sha256(reader_role.encode())
    for path in view_files():
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    digest.update(repr(catalogue()).encode())
    return digest.hexdigest()


def pending_ids(engine: Engine) -> list[str] | None:
    """Ids of the migrations not applied yet, read without any lock (None when the store has
    no migration table yet: everything is pending)."""
    with engine.connect() as conn:
        if conn.execute(sa.text("SELECT to_regclass('_yoyo_migration')")).scalar() is None:
            return None
        applied = set(conn.execute(sa.text("SELECT migration_hash FROM _yoyo_migration")).scalars())
    return [i for i in migration_ids() if _hash(i) not in applied]


def upgrade(
    engine: Engine,
    reader_role: str = "dynosaur_reader",
    *,
    force: bool = False,
    lock_timeout_s: float = 60.0,
) -> list[str]:
    """Apply pending migrations, then re-create views, reasons and the reader role's grants.

    Whether anything is pending is read first, without a lock: a store that is up to date costs
    two small queries and takes no lock. Migrating takes a session advisory lock (released by
    the server when its holder dies) within ``lock_timeout_s``; a yoyo lock row left by a killed
    migrator is then broken with a warning. The second part runs only when a migration was
    applied, a definition changed, or ``force``. Returns the ids of the migrations applied by
    this call (empty when already up to date).
    """
    pending = pending_ids(engine)
    applied: list[str] = []
    if pending is None or pending:
        applied = _migrate(engine, lock_timeout_s)
    fingerprint = _definitions_fingerprint(reader_role)
    if not (force or applied) and _stored_fingerprint(engine) == fingerprint:
        return applied
    with engine.begin() as conn:
        _set_lock_timeout(conn, lock_timeout_s)
        try:
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _UPGRADE_LOCK_KEY})
        except sa.exc.OperationalError as exc:
            raise _lock_timeout(exc, "re-creating the views", lock_timeout_s) from None
        _set_lock_timeout(conn, 0)
        stored = conn.execute(
            sa.text("SELECT value FROM schema_meta WHERE key = 'definitions'")
        ).scalar()
        if force or applied or stored != fingerprint:
            _sync_reasons(conn)
            for path in view_files():
                conn.exec_driver_sql(path.read_text())
            _ensure_reader_role(conn, reader_role)
            conn.execute(
                sa.text(
                    "INSERT INTO schema_meta (key, value) VALUES ('definitions', :v) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
                ),
                {"v": fingerprint},
            )
    return applied


def _stored_fingerprint(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return conn.execute(
            sa.text("SELECT value FROM schema_meta WHERE key = 'definitions'")
        ).scalar()


def _set_lock_timeout(conn: sa.Connection, seconds: float) -> None:
    value = f"{max(0, int(seconds * 1000))}ms"
    conn.execute(sa.text("SELECT set_config('lock_timeout', :t, false)"), {"t": value})


def _lock_timeout(exc: sa.exc.OperationalError, doing: str, seconds: float) -> Exception:
    if getattr(exc.orig, "pgcode", None) == "55P03":  # lock_not_available
        return LockTimeout(
            f"another process has been {doing} for more than {seconds:g} s; wait for it, or "
            "raise DYNOSAUR_LOCK_TIMEOUT_S"
        )
    return exc


def _migrate(engine: Engine, lock_timeout_s: float) -> list[str]:
    """Apply the pending migrations under the session advisory lock (see :func:`upgrade`)."""
    with engine.connect() as conn:
        _set_lock_timeout(conn, lock_timeout_s)
        try:
            conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": _MIGRATE_LOCK_KEY})
        except sa.exc.OperationalError as exc:
            raise _lock_timeout(exc, "migrating the store", lock_timeout_s) from None
        _set_lock_timeout(conn, 0)
        conn.commit()
        try:
            # Every migrator holds the advisory lock first: a yoyo lock row seen now was left by
            # a process that died while migrating.
            if conn.execute(sa.text("SELECT to_regclass('yoyo_lock')")).scalar() is not None:
                stale = conn.execute(sa.text("DELETE FROM yoyo_lock RETURNING pid")).scalars()
                for pid in stale.all():
                    log.warning("broke the migrations lock left by process %s (gone)", pid)
                conn.commit()
            backend = _backend(engine)
            try:
                migrations = _migrations()
                with backend.lock():
                    pending = backend.to_apply(migrations)
                    backend.apply_migrations(pending)
            finally:
                backend.connection.close()  # yoyo's own connection, not from the pool
            return [m.id for m in pending]
        finally:
            conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _MIGRATE_LOCK_KEY})
            conn.commit()


def _sync_reasons(conn: sa.Connection) -> None:
    conn.execute(
        sa.text(
            "INSERT INTO reason (code, stage, description) VALUES (:code, :stage, :description) "
            "ON CONFLICT (code) DO UPDATE SET stage = excluded.stage, "
            "description = excluded.description"
        ),
        [{"code": c, "stage": s, "description": d} for c, s, d in catalogue()],
    )


def _ensure_reader_role(conn: sa.Connection, role: str) -> None:
    """Create the read-only role if needed and let it read the views and nothing else."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", role):
        raise StoreError(f"invalid reader role name {role!r} (lowercase letters, digits, _)")
    exists = conn.execute(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role})
    if exists.first() is None:
        # Roles are cluster-wide; a concurrent upgrade in another database may have created it.
        conn.exec_driver_sql(
            f"DO $$ BEGIN CREATE ROLE {role} NOLOGIN; "
            f"EXCEPTION WHEN duplicate_object THEN NULL; END $$"
        )
    schema = conn.execute(sa.text("SELECT current_schema()")).scalar_one()
    conn.exec_driver_sql(f'GRANT USAGE ON SCHEMA "{schema}" TO {role}')
    conn.exec_driver_sql(f'REVOKE ALL ON ALL TABLES IN SCHEMA "{schema}" FROM {role}')
    for view in view_names():
        conn.exec_driver_sql(f'GRANT SELECT ON "{schema}"."{view}" TO {role}')


def schema_status(engine: Engine) -> SchemaStatus:
    """Applied and pending migrations, row counts of the base tables, and the views."""
    backend = _backend(engine)
    try:
        migrations = _migrations()
        applied_ids = {m.id for m in migrations if backend.is_applied(m)}
    finally:
        backend.connection.close()
    result = SchemaStatus(
        url=engine.url.render_as_string(hide_password=True),
        applied=[m.id for m in migrations if m.id in applied_ids],
        pending=[m.id for m in migrations if m.id not in applied_ids],
    )
    with engine.connect() as conn:
        existing = set(
            conn.execute(
                sa.text(
                    "SELECT table_name FROM information_schema.tables "
                    "WHERE table_schema = current_schema()"
                )
            ).scalars()
        )
        for table in TABLES:
            if table in existing:
                count = conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
                result.table_counts[table] = int(count)
        result.views = [v for v in view_names() if v in existing]
    return result
