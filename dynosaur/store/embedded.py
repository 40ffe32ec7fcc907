"""The embedded Postgres: a real server started on demand by ``pgserver`` when no URL is configured.

The server listens on a Unix socket inside its data directory and keeps running after the process
that started it exits, so later commands reuse it instead of paying the start-up again.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

from dynosaur.errors import StoreError

log = logging.getLogger(__name__)


def embedded_url(pgdata: Path, database: str = "postgres") -> str:
    """Start (or reuse) the embedded server in ``pgdata`` and return a SQLAlchemy URL for it."""
    pgdata.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # platformdirs warns about a missing XDG_RUNTIME_DIR on servers; the fallback is fine.
        warnings.simplefilter("ignore")
        try:
            import pgserver

            server = pgserver.get_server(pgdata, cleanup_mode=None)
        except Exception as exc:  # pgserver raises bare subprocess errors
            raise StoreError(
                f"could not start the embedded Postgres in {pgdata}: {exc}. "
                "Set DYNOSAUR_DATABASE_URL to use a Postgres server instead."
            ) from exc
    # pgserver hands out libpq-style URIs (postgresql://postgres:@/db?host=/socket/dir).
    return server.get_uri(database)


def stop_embedded(pgdata: Path) -> bool:
    """Stop the embedded server in ``pgdata`` if one runs; return whether one was stopped."""
    import subprocess

    # pgserver creates its command wrappers (pg_ctl, initdb...) when the module is imported.
    from pgserver._commands import pg_ctl  # type: ignore[attr-defined]

    if not (pgdata / "postmaster.pid").exists():
        return False
    user = "pgserver" if _running_as_root() else None
    try:
        pg_ctl(["-w", "stop"], pgdata=pgdata, user=user)
    except subprocess.CalledProcessError:
        return False
    return True


def _running_as_root() -> bool:
    import os

    return hasattr(os, "geteuid") and os.geteuid() == 0
