"""The Hub as a source: discover new dataset revisions, collect their cards, configs, features
and sample rows into ``hub_dataset`` / ``dataset_config``, and read a collected config back."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.engine import Engine

from dynosaur.hub import repository
from dynosaur.hub.collect import collect
from dynosaur.hub.discover import DiscoverResult, discover
from dynosaur.hub.repository import load_config_metadata
from dynosaur.settings import Settings

__all__ = [
    "DiscoverResult",
    "collect",
    "collect_queue",
    "discover",
    "load_config_metadata",
]


def collect_queue(
    settings: Settings,
    engine: Engine,
    *,
    ids: Sequence[str] | None = None,
    limit: int | None = None,
) -> list[int]:
    """``hub_dataset`` ids to collect now: ``discovered`` rows, and ``deferred`` ones whose next
    attempt is due (all deferred ones among explicit Hub dataset ``ids``)."""
    del settings  # part of the step signature; the queue depends on the store only
    return repository.collect_queue(engine, ids=ids, limit=limit)
