"""Postgres access: the engine (embedded by default), migrations, and one repository module per
domain, where every SQL statement of the product lives (``batches``, ``status`` here)."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from dynosaur.settings import Settings
from dynosaur.store.engine import check_connection, dispose_engines, get_engine
from dynosaur.store.migrations import SchemaStatus, schema_status, upgrade

__all__ = [
    "SchemaStatus",
    "check_connection",
    "dispose_engines",
    "get_engine",
    "open_store",
    "schema_status",
    "upgrade",
]

_ready: set[str] = set()


def open_store(settings: Settings) -> Engine:
    """The store's engine, reachable and migrated to the latest schema (once per process)."""
    engine = get_engine(settings)
    key = engine.url.render_as_string(hide_password=False)
    if key not in _ready:
        check_connection(engine)
        upgrade(engine, settings.reader_role, lock_timeout_s=settings.lock_timeout_s)
        _ready.add(key)
    return engine
