"""A grown store for the report tests: three simulated days of ``dynosaur grow`` against the Hub
and LLM emulators (the demo's days), in a database of its own, built once per module."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine

from dynosaur.airflow.demo import DEMO_DAYS, DEMO_INVALID_SHARE
from dynosaur.emulators.hub import HubEmulator
from dynosaur.emulators.llm import LLMEmulator
from dynosaur.pipeline import grow, request_for
from dynosaur.settings import Settings
from dynosaur.store import open_store
from tests.conftest import DatabaseFactory, pointed_at


@pytest.fixture(scope="module")
def grown(base_settings: Settings, databases: DatabaseFactory) -> Iterator[Engine]:
    """A store with versions 1-3 (the demo's days), some tasks rejected on purpose."""
    settings = base_settings.model_copy(update={"database_url": databases.create("report")})
    engine = open_store(settings)
    first = datetime.fromisoformat(DEMO_DAYS[0]).replace(tzinfo=UTC)
    with (
        HubEmulator(now=first) as hub,
        LLMEmulator(invalid_share=DEMO_INVALID_SHARE, seed=7) as llm,
    ):
        online = pointed_at(settings, hub, llm).model_copy(update={"llm_backoff_s": 0.01})
        for day in DEMO_DAYS:
            start = datetime.fromisoformat(day).replace(tzinfo=UTC)
            hub.now = start + timedelta(days=1) - timedelta(seconds=1)
            figures = grow(online, engine, request_for(day=start))
            assert figures["status"] == "published", figures
    yield engine
    engine.dispose()
