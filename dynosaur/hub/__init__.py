"""The Hub as a source: discover new dataset revisions, and collect their cards, configs,
features and sample rows. What they store goes through :mod:`dynosaur.store.datasets`."""

from __future__ import annotations

from dynosaur.hub.collect import collect
from dynosaur.hub.discover import DiscoverResult, discover

__all__ = ["DiscoverResult", "collect", "discover"]
