"""Where the collection stands: the latest version, the newest batches and the rows per status
of each step (what ``dynosaur status`` prints)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from dynosaur.store import batches
from dynosaur.store import status as figures
from dynosaur.store.batches import Batch
from dynosaur.store.status import BatchSummary, StatusCount


@dataclass(frozen=True)
class Status:
    """The latest published version (None before the first), the newest batches (newest first)
    and how many datasets, configs and tasks have each status."""

    latest_version: int | None
    batches: list[BatchSummary]
    rows: list[StatusCount]
    stale: list[Batch] = field(default_factory=list)


def status(engine: Engine, *, batches_shown: int = 10, lease_s: float = 600.0) -> Status:
    """Where the collection stands, read from the store (nothing is changed); ``stale`` lists
    the building batches whose process is gone (no heartbeat within ``lease_s``, or a dead
    process of this host)."""
    from dynosaur.pipeline.run import holder_gone

    gone = [b.holder for b in batches.building(engine) if b.holder and holder_gone(b.holder)]
    return Status(
        latest_version=batches.latest_version(engine),
        batches=figures.batch_summaries(engine, limit=batches_shown),
        rows=figures.rows_by_status(engine),
        stale=batches.stale_batches(engine, lease_s, gone_holders=gone),
    )
