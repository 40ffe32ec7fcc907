"""The Hub as a source: discover new dataset revisions, and collect their cards, configs,
features and sample rows. What they store goes through :mod:`dynosaur.store.datasets`."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.engine import Engine

from dynosaur.hub.collect import collect
from dynosaur.hub.discover import DiscoverResult, discover
from dynosaur.settings import Settings
from dynosaur.store import datasets

__all__ = [
    "DiscoverResult",
    "collect",
    "collect_queue",
    "discover",
]


def collect_queue(
    settings: Settings,
    engine: Engine,
    *,
    ids: Sequence[str] | None = None,
    limit: int | None = None,
) -> list[int]:
    """``hub_dataset`` ids to collect now (see :func:`dynosaur.store.datasets.collect_queue`).

    Kept with its old signature for ``dynosaur.pipeline`` until it calls the store directly;
    ``settings`` is unused: the queue depends on the store only.
    """
    del settings
    return datasets.collect_queue(engine, ids=ids, limit=limit)
