"""Select from a store built by the growth pipeline (emulated Hub and LLM), then export."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dynosaur.emulators.hub import HubEmulator
from dynosaur.emulators.llm import LLMEmulator
from dynosaur.export import FIELDS, export
from dynosaur.pipeline import grow, request_for
from dynosaur.select import select_coreset, select_replay
from dynosaur.settings import Settings
from tests.curate.factory import live_settings

pytestmark = pytest.mark.select


@pytest.fixture
def grown(settings: Settings, select_store: Engine) -> Iterator[tuple[Settings, Engine]]:
    """Versions 1 and 2: two simulated days of growth against the emulators."""
    with HubEmulator() as hub, LLMEmulator(seed=3) as llm:
        live = live_settings(settings, hub, llm)
        for version, date in enumerate(("2024-03-01", "2024-03-02"), start=1):
            hub.now = datetime.fromisoformat(date + "T23:59:59+00:00")
            assert grow(live, select_store, request_for(day=date))["version"] == version
        yield live, select_store


def _exported(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _selected(engine: Engine, name: str) -> list[dict]:
    """The exported fields of a selection as the view names them (`taskname` is `source`)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT instruction, input, output, license, website, source AS taskname "
                "FROM selected_instance WHERE selection_name = :n "
                "ORDER BY rank NULLS LAST, instance_id"
            ),
            {"n": name},
        ).mappings()
        return [dict(r) for r in rows]


def test_coreset_and_replay_of_a_grown_store_export_exactly_their_members(
    grown: tuple[Settings, Engine], tmp_path: Path
) -> None:
    settings, engine = grown
    with engine.connect() as conn:
        sizes = dict(
            conn.execute(sa.text("SELECT version, count(*) FROM collection GROUP BY 1")).all()
        )
    first = select_coreset(engine, settings, version=1, fraction=0.05, name="core-v1")
    assert first.summary.figures["embedded"] == sizes[1]
    core = select_coreset(engine, settings, version=2, fraction=0.05, per="category", name="core")
    assert core.summary.figures["embedded"] == sizes[2]  # version 1 was embedded already
    expected = round(0.05 * (sizes[1] + sizes[2]))
    assert abs(core.selection.instances_selected - expected) <= 3  # rounding in each category

    result = export(settings, engine, fmt="jsonl", out=tmp_path, selection="core")
    assert _exported(result.path) == _selected(engine, "core")
    assert list(_exported(result.path)[0]) == list(FIELDS)
    assert len(_exported(result.path)) == core.selection.instances_selected

    replay = select_replay(engine, settings, version=2, tasks=2, name="stage2")
    result = export(settings, engine, fmt="jsonl", out=tmp_path, selection="stage2")
    rows = _exported(result.path)
    assert rows == _selected(engine, "stage2")
    with engine.connect() as conn:
        replayed = conn.execute(
            sa.text(
                "SELECT count(*) FROM instance WHERE task_id IN (SELECT m.task_id "
                "FROM selection_member m JOIN selection s ON s.id = m.selection_id "
                "WHERE s.name = 'stage2' AND m.role = 'replay')"
            )
        ).scalar_one()
    assert replay.selection.tasks_selected == replay.summary.counts[("current", None)] + 2
    assert len(rows) == sizes[2] + replayed  # batch 2 plus the two replayed tasks
