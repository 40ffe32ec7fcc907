"""What the emulator tests and the Hub ingestion tests share: facts of the project's own
snapshot, a simulated now after all of it, and a Hub emulator pinned to that now (so no test
depends on the real clock)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from dynosaur.emulators.hub import HubEmulator
from dynosaur.emulators.snapshot import DEFAULT_SNAPSHOT

SQUAD = "dynosaur-fixtures/squad-like"
AFTER_ALL = datetime(2024, 6, 1, tzinfo=UTC)  # after every creation and change in the snapshot


def at(text: str) -> datetime:
    """A UTC moment from ISO text."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def own_index() -> list[dict[str, Any]]:
    """The project's own snapshot index (what the emulator serves by default)."""
    lines = (DEFAULT_SNAPSHOT / "index.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def created_on(day: str) -> set[str]:
    """Ids of the own snapshot's datasets created on a UTC day (YYYY-MM-DD)."""
    return {e["id"] for e in own_index() if e["created_at"].startswith(day)}


@pytest.fixture
def own_hub() -> Iterator[HubEmulator]:
    """The emulator serving the project's own snapshot, its clock after every creation."""
    with HubEmulator(now=AFTER_ALL) as hub:
        yield hub
