"""Where the collection stands: the latest version, the newest batches and the rows per status
of each step (what ``dynosaur status`` prints)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine

from dynosaur.store import batches
from dynosaur.store import status as figures
from dynosaur.store.status import BatchSummary, StatusCount


@dataclass(frozen=True)
class Status:
    """The latest published version (None before the first), the newest batches (newest first)
    and how many datasets, configs and tasks have each status."""

    latest_version: int | None
    batches: list[BatchSummary]
    rows: list[StatusCount]


def status(engine: Engine, *, batches_shown: int = 10) -> Status:
    """Where the collection stands, read from the store (nothing is changed)."""
    return Status(
        latest_version=batches.latest_version(engine),
        batches=figures.batch_summaries(engine, limit=batches_shown),
        rows=figures.rows_by_status(engine),
    )
