"""Batch lifecycle: one growth run builds one batch; publishing makes it visible as version N.

``building`` --publish--> ``published`` (version = previous max + 1) or ``empty`` (no valid task)
``building`` --fail-->    ``failed``: its tasks go back to ``proposed`` and its configs back to
``generated`` (a later run curates them), its instances are deleted: nothing of it is visible.

Version N of the collection is every published batch with ``version <= N`` (``collection_at(N)``
in SQL). A batch is identified by its run key, so re-running a run finds its batch again.

Every SQL statement about batches lives here; :mod:`dynosaur.pipeline` decides when to call them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from dynosaur.errors import BatchStateError, LockTimeout, RunInProgress
from dynosaur.model import Window
from dynosaur.reasons import Reason, describe

# Publishers (and fail_batch) serialise on the one row of `publish_lock`, FOR UPDATE: a lock only
# a role that may update the table can take (the read-only role cannot stall publishing).
DEFAULT_LOCK_TIMEOUT_S = 60.0

__all__ = [
    "Batch",
    "BatchStateError",
    "adopt_or_refuse",
    "batch_figures",
    "beat",
    "fail_batch",
    "find_batch",
    "get_batch",
    "latest_version",
    "newest_building",
    "open_batch",
    "publish_batch",
    "published_versions",
    "release_stale",
    "stale_batches",
]


@dataclass(frozen=True)
class Batch:
    """One row of ``batch``."""

    id: int
    run_key: str
    status: str
    version: int | None
    dag_run_id: str | None
    window_start: datetime | None
    window_end: datetime | None
    reason: str | None
    message: str | None
    figures: dict[str, Any]
    cost_usd: float
    created_at: datetime
    published_at: datetime | None
    heartbeat_at: datetime | None = None
    holder: str | None = None
    adopted: dict[str, Any] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        """Published or empty: nothing more happens to it."""
        return self.status in ("published", "empty")


_COLUMNS = (
    "id, run_key, status, version, dag_run_id, window_start, window_end, reason, message, "
    "figures, cost_usd, created_at, published_at, heartbeat_at, holder, adopted"
)
# A building batch whose holder sent no heartbeat within the lease (seconds, :lease).
_STALE = (
    "(status = 'building' AND (heartbeat_at IS NULL "
    "OR heartbeat_at < now() - make_interval(secs => :lease)))"
)


def _batch(row: sa.Row[Any]) -> Batch:
    data = row._asdict()
    data["cost_usd"] = float(data["cost_usd"])
    return Batch(**data)


def get_batch(conn: Connection | Engine, batch_id: int) -> Batch:
    """The batch with id ``batch_id`` (raises when there is none)."""
    with _connect(conn) as c:
        row = c.execute(
            sa.text(f"SELECT {_COLUMNS} FROM batch WHERE id = :id"), {"id": batch_id}
        ).first()
    if row is None:
        raise BatchStateError(f"there is no batch {batch_id}")
    return _batch(row)


def find_batch(engine: Connection | Engine, run_key: str) -> Batch | None:
    """The batch of a run key, if that run has started."""
    with _connect(engine) as conn:
        row = conn.execute(
            sa.text(f"SELECT {_COLUMNS} FROM batch WHERE run_key = :k"), {"k": run_key}
        ).first()
    return _batch(row) if row is not None else None


def newest_building(engine: Engine, run_key_prefix: str) -> Batch | None:
    """The newest batch still building whose run key starts with ``run_key_prefix``."""
    with engine.connect() as conn:
        row = conn.execute(
            sa.text(
                f"SELECT {_COLUMNS} FROM batch WHERE status = 'building' "
                "AND left(run_key, length(:p)) = :p ORDER BY id DESC LIMIT 1"
            ),
            {"p": run_key_prefix},
        ).first()
    return _batch(row) if row is not None else None


def open_batch(
    engine: Engine,
    run_key: str,
    *,
    window: Window | None = None,
    dag_run_id: str | None = None,
    holder: str | None = None,
) -> Batch:
    """The batch of ``run_key``: created on the first call, found again on later ones.

    A batch that failed is reopened (``building`` again) so that a retried run finishes it; a
    published or empty batch is returned as it is. A new or reopened batch is held by
    ``holder`` (heartbeat now); a batch found building keeps its holder (see
    :func:`adopt_or_refuse`).
    """
    with engine.begin() as conn:
        row = conn.execute(
            sa.text(
                "INSERT INTO batch (run_key, dag_run_id, window_start, window_end, holder, "
                "heartbeat_at) VALUES (:k, :d, :s, :e, :h, CASE WHEN :h IS NULL THEN NULL "
                "ELSE now() END) ON CONFLICT (run_key) DO NOTHING "
                f"RETURNING {_COLUMNS}"
            ),
            {
                "k": run_key,
                "d": dag_run_id,
                "s": window.start if window else None,
                "e": window.end if window else None,
                "h": holder,
            },
        ).first()
        if row is None:
            row = conn.execute(
                sa.text(
                    "UPDATE batch SET status = 'building', reason = NULL, message = NULL, "
                    "dag_run_id = coalesce(:d, dag_run_id), holder = :h, "
                    "heartbeat_at = CASE WHEN :h IS NULL THEN NULL ELSE now() END "
                    f"WHERE run_key = :k AND status = 'failed' RETURNING {_COLUMNS}"
                ),
                {"k": run_key, "d": dag_run_id, "h": holder},
            ).first()
        if row is None:
            row = conn.execute(
                sa.text(f"SELECT {_COLUMNS} FROM batch WHERE run_key = :k"), {"k": run_key}
            ).one()
    return _batch(row)


def adopt_or_refuse(
    engine: Engine, batch_id: int, holder: str, lease_s: float, *, holder_gone: bool = False
) -> Batch:
    """Hold a building batch as ``holder`` (heartbeat now): when it has no holder, is held by
    ``holder`` already, its holder is known to be gone (``holder_gone``), or its holder's
    heartbeat is older than the lease (the batch is adopted). Raises :class:`RunInProgress`
    while another holder is alive."""
    with engine.begin() as conn:
        row = conn.execute(
            sa.text(
                f"UPDATE batch SET holder = :h, heartbeat_at = now() WHERE id = :b AND "
                f"(status <> 'building' OR holder IS NULL OR holder = :h OR :gone OR {_STALE}) "
                f"RETURNING {_COLUMNS}"
            ),
            {"b": batch_id, "h": holder, "lease": lease_s, "gone": holder_gone},
        ).first()
        if row is not None:
            return _batch(row)
        held = get_batch(conn, batch_id)
    raise RunInProgress(
        f"run {held.run_key} is being built by {held.holder} (heartbeat at "
        f"{held.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC, batch {held.id}): wait for it to finish, "
        "or run it again once its process is gone"
    )


def beat(engine: Engine, batch_id: int, holder: str) -> bool:
    """Refresh the heartbeat of a batch ``holder`` builds; False when it no longer holds it."""
    with engine.begin() as conn:
        row = conn.execute(
            sa.text(
                "UPDATE batch SET heartbeat_at = now() WHERE id = :b AND holder = :h "
                "AND status = 'building' RETURNING id"
            ),
            {"b": batch_id, "h": holder},
        ).first()
    return row is not None


def note_adopted(engine: Engine, batch_id: int, adopted: dict[str, list[str]]) -> dict[str, Any]:
    """Add leftovers the batch took over (lists by kind) to ``batch.adopted``; the whole."""
    with engine.begin() as conn:
        current = conn.execute(
            sa.text("SELECT adopted FROM batch WHERE id = :b FOR UPDATE"), {"b": batch_id}
        ).scalar_one()
        merged = {k: list(v) for k, v in (current or {}).items()}
        for kind, items in adopted.items():
            merged[kind] = sorted(set(merged.get(kind, [])) | set(items))
        conn.execute(
            sa.text("UPDATE batch SET adopted = :a WHERE id = :b").bindparams(
                sa.bindparam("a", type_=sa.JSON)
            ),
            {"a": merged, "b": batch_id},
        )
    return merged


def building(engine: Engine) -> list[Batch]:
    """Every batch still building, oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(f"SELECT {_COLUMNS} FROM batch WHERE status = 'building' ORDER BY id")
        ).all()
    return [_batch(r) for r in rows]


def stale_batches(
    engine: Engine, lease_s: float, *, gone_holders: Sequence[str] = ()
) -> list[Batch]:
    """Building batches whose holder sent no heartbeat within the lease, or whose holder is
    known to be gone, oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                f"SELECT {_COLUMNS} FROM batch WHERE {_STALE} "
                "OR (status = 'building' AND holder = ANY(:gone)) ORDER BY id"
            ),
            {"lease": lease_s, "gone": list(gone_holders)},
        ).all()
    return [_batch(r) for r in rows]


def release_stale(
    engine: Engine,
    lease_s: float,
    *,
    keep: int | None = None,
    gone_holders: Sequence[str] = (),
) -> list[Batch]:
    """Mark failed (``run_abandoned``) every stale building batch but ``keep`` (see
    :func:`stale_batches`): their work goes back to the queues for any run to adopt; the next
    run of their key reopens them."""
    released = []
    for batch in stale_batches(engine, lease_s, gone_holders=gone_holders):
        if batch.id == keep:
            continue
        done = fail_batch(
            engine,
            batch.id,
            f"no heartbeat from {batch.holder or 'its process'} since "
            f"{batch.heartbeat_at or batch.created_at:%Y-%m-%d %H:%M:%S} UTC: released",
            reason=Reason.RUN_ABANDONED,
            only_if_stale_s=None if batch.holder in gone_holders else lease_s,
        )
        if done.status == "failed" and done.reason == Reason.RUN_ABANDONED.value:
            released.append(done)
    return released


def _publish_lock(conn: Connection, timeout_s: float) -> None:
    """Take the publish lock (the row of ``publish_lock``) within ``timeout_s``."""
    timeout = f"{max(1, int(timeout_s * 1000))}ms"
    conn.execute(sa.text("SELECT set_config('lock_timeout', :t, true)"), {"t": timeout})
    try:
        conn.execute(sa.text("SELECT id FROM publish_lock WHERE id = 1 FOR UPDATE")).first()
    except sa.exc.OperationalError as exc:
        if getattr(exc.orig, "pgcode", None) == "55P03":  # lock_not_available
            raise LockTimeout(
                f"another process held the publish lock for more than {timeout_s:g} s: try "
                "again later, or raise DYNOSAUR_LOCK_TIMEOUT_S"
            ) from None
        raise
    conn.execute(sa.text("SELECT set_config('lock_timeout', '0', true)"))


def batch_figures(conn: Connection, batch_id: int) -> dict[str, Any]:
    """Counts and cost of a batch as JSON: datasets, configs, tasks by status and reason, cost."""
    row = conn.execute(
        sa.text(
            """
            SELECT
              (SELECT count(DISTINCT hub_dataset_id) FROM dataset_config
                WHERE batch_id = :b) AS datasets,
              (SELECT count(*) FROM dataset_config WHERE batch_id = :b) AS configs,
              (SELECT count(*) FROM task WHERE batch_id = :b AND status = 'valid') AS tasks_valid,
              (SELECT count(*) FROM task
                WHERE batch_id = :b AND status = 'rejected') AS tasks_rejected,
              (SELECT count(*) FROM instance WHERE batch_id = :b) AS instances,
              (SELECT coalesce(sum(g.cost_usd), 0) FROM generation g
                 JOIN dataset_config c ON c.id = g.config_id WHERE c.batch_id = :b) AS cost_usd,
              (SELECT count(DISTINCT g.llm_call_id) FROM generation g
                 JOIN dataset_config c ON c.id = g.config_id WHERE c.batch_id = :b) AS llm_calls
            """
        ),
        {"b": batch_id},
    ).one()
    figures: dict[str, Any] = {k: int(v) for k, v in row._asdict().items() if k != "cost_usd"}
    figures["cost_usd"] = round(float(row.cost_usd), 6)
    rejected = conn.execute(
        sa.text(
            "SELECT reason, count(*) FROM task WHERE batch_id = :b AND status = 'rejected' "
            "GROUP BY reason ORDER BY count(*) DESC, reason"
        ),
        {"b": batch_id},
    ).all()
    figures["rejected_by_reason"] = {reason: int(n) for reason, n in rejected}
    adopted = conn.execute(
        sa.text("SELECT adopted FROM batch WHERE id = :b"), {"b": batch_id}
    ).scalar()
    figures["adopted"] = {kind: len(items) for kind, items in (adopted or {}).items()}
    return figures


def publish_batch(
    engine: Engine, batch_id: int, *, lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S
) -> Batch:
    """Publish a curated batch in one transaction: version = max + 1, figures and cost written.

    A batch without a valid task becomes ``empty`` (reason ``empty_batch``, no version).
    Publishing a published or empty batch again returns it unchanged.
    """
    with engine.begin() as conn:
        _publish_lock(conn, lock_timeout_s)
        batch = get_batch(conn, batch_id)
        if batch.finished:
            return batch
        if batch.status != "building":
            raise BatchStateError(
                f"batch {batch_id} is {batch.status} ({batch.message or batch.reason}); "
                "run it again to rebuild it before publishing"
            )
        left = conn.execute(
            sa.text(
                "SELECT count(*) FROM task t JOIN dataset_config c ON c.id = t.config_id "
                "WHERE c.batch_id = :b AND t.status = 'proposed'"
            ),
            {"b": batch_id},
        ).scalar_one()
        if left:
            raise BatchStateError(
                f"batch {batch_id} still has {left} proposed task(s): run curate before publishing"
            )
        figures = batch_figures(conn, batch_id)
        params = {"b": batch_id, "f": figures, "c": figures["cost_usd"]}
        if figures["tasks_valid"] == 0:
            conn.execute(
                sa.text(
                    "UPDATE batch SET status = 'empty', reason = :r, message = :m, "
                    "figures = :f, cost_usd = :c WHERE id = :b"
                ).bindparams(sa.bindparam("f", type_=sa.JSON)),
                {**params, "r": Reason.EMPTY_BATCH.value, "m": describe(Reason.EMPTY_BATCH)},
            )
        else:
            version = conn.execute(
                sa.text("SELECT coalesce(max(version), 0) + 1 FROM batch")
            ).scalar_one()
            figures["version"] = int(version)
            conn.execute(
                sa.text(
                    "UPDATE batch SET status = 'published', version = :v, published_at = now(), "
                    "figures = :f, cost_usd = :c WHERE id = :b"
                ).bindparams(sa.bindparam("f", type_=sa.JSON)),
                {**params, "v": version, "f": figures},
            )
        return get_batch(conn, batch_id)


def fail_batch(
    engine: Engine,
    batch_id: int,
    message: str,
    *,
    reason: Reason = Reason.RUN_FAILED,
    only_if_stale_s: float | None = None,
    lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S,
) -> Batch:
    """Mark a building batch failed and undo its curation, so nothing of it is ever visible.

    Its configs return to ``generated`` and its tasks to ``proposed`` (a later run curates them
    again); its instances and near-duplicate index rows are deleted. Its datasets stay its own:
    the next run of its key reopens it and carries on, and any other run may adopt them. Published
    and empty batches are left as they are; with ``only_if_stale_s`` so is a batch whose holder
    sent a heartbeat within that many seconds.
    """
    with engine.begin() as conn:
        _publish_lock(conn, lock_timeout_s)
        if only_if_stale_s is not None:
            row = conn.execute(
                sa.text(f"SELECT id FROM batch WHERE id = :b AND {_STALE} FOR UPDATE"),
                {"b": batch_id, "lease": only_if_stale_s},
            ).first()
            if row is None:
                return get_batch(conn, batch_id)
        batch = get_batch(conn, batch_id)
        if batch.status != "building":
            return batch
        conn.execute(sa.text("DELETE FROM instance WHERE batch_id = :b"), {"b": batch_id})
        conn.execute(
            sa.text(
                "DELETE FROM task_lsh WHERE task_id IN (SELECT id FROM task WHERE batch_id = :b)"
            ),
            {"b": batch_id},
        )
        conn.execute(
            sa.text(
                "UPDATE task SET status = 'proposed', reason = NULL, message = NULL, "
                "labels = NULL, instance_instruction = NULL, fingerprint = NULL, "
                "notes = '{}', batch_id = NULL, curated_at = NULL WHERE batch_id = :b"
            ),
            {"b": batch_id},
        )
        conn.execute(
            sa.text(
                "UPDATE dataset_config SET status = 'generated', batch_id = NULL, "
                "updated_at = now() WHERE batch_id = :b"
            ),
            {"b": batch_id},
        )
        conn.execute(
            sa.text(
                "UPDATE batch SET status = 'failed', reason = :r, message = :m, holder = NULL "
                "WHERE id = :b"
            ),
            {"b": batch_id, "r": reason.value, "m": message[:2000]},
        )
        return get_batch(conn, batch_id)


def latest_version(engine: Engine) -> int | None:
    """The newest published version, or None before the first publish."""
    with engine.connect() as conn:
        return conn.execute(
            sa.text("SELECT max(version) FROM batch WHERE status = 'published'")
        ).scalar_one()


def published_versions(engine: Engine) -> list[Batch]:
    """Every published batch, oldest version first."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(f"SELECT {_COLUMNS} FROM batch WHERE status = 'published' ORDER BY version")
        ).all()
    return [_batch(r) for r in rows]


class _connect:
    """Use a given connection as is, or open one from an engine for the block."""

    def __init__(self, target: Connection | Engine) -> None:
        self.target = target
        self.conn: Connection | None = None

    def __enter__(self) -> Connection:
        if isinstance(self.target, Connection):
            return self.target
        self.conn = self.target.connect()
        return self.conn

    def __exit__(self, *exc: object) -> None:
        if self.conn is not None:
            self.conn.close()
