"""Content checks over the whole shared snapshot (skipped without ``../shared``): the LLM emulator
derives tasks for every collected config, and no valid task may have its answer in its input."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dynosaur.emulators.hub import HubEmulator
from dynosaur.emulators.llm import LLMEmulator
from dynosaur.pipeline import grow, request_for
from dynosaur.settings import Settings
from tests.conftest import SHARED_SNAPSHOT
from tests.curate.factory import live_settings

pytestmark = pytest.mark.shared_snapshot


def _plain(value: Any, labels: list[str] | None) -> str | None:
    """The test's own reading of a whole value: ClassLabel ints as names, case and spaces folded."""
    if isinstance(value, bool):
        value = str(value)
    elif isinstance(value, int) and labels:
        value = labels[value] if 0 <= value < len(labels) else None
    if value is None or isinstance(value, list | dict):
        return None
    text = " ".join(str(value).split()).casefold()
    return text or None


def _leaks_in_most_rows(task: Any, fields: list[dict[str, Any]], rows: list[Any]) -> bool:
    labels = {f["name"]: f.get("labels") for f in fields if "class_label" in f["type"]}
    with_output = leaking = 0
    for row in rows:
        if not isinstance(row, dict):
            continue
        out = _plain(row.get(task.output_field), labels.get(task.output_field))
        if out is None:
            continue
        with_output += 1
        inputs = [_plain(row.get(n), labels.get(n)) for n in task.input_fields or ()]
        leaking += out in inputs
    return with_output > 0 and leaking / with_output > 0.5


def test_no_valid_task_of_the_snapshot_has_its_answer_in_its_input(
    settings: Settings, store: Engine
) -> None:
    ids = [json.loads(line)["id"] for line in (SHARED_SNAPSHOT / "index.jsonl").open()]
    with (
        HubEmulator(SHARED_SNAPSHOT, now=datetime(2023, 1, 1, tzinfo=UTC)) as hub,
        LLMEmulator() as llm,
    ):
        grow(live_settings(settings, hub, llm, languages=[]), store, request_for(ids=ids))
    with store.connect() as conn:
        tasks = conn.execute(
            sa.text(
                "SELECT t.input_fields, t.output_field, t.status, t.reason, t.notes, c.fields, "
                "c.sample_rows FROM task t JOIN dataset_config c ON c.id = t.config_id"
            )
        ).all()
    outcome = Counter((t.status, t.reason) for t in tasks)
    leaking_valid = [
        t for t in tasks if t.status == "valid" and _leaks_in_most_rows(t, t.fields, t.sample_rows)
    ]
    flagged = sum(1 for t in tasks if t.status == "valid" and "answer_in_input" in t.notes)
    print(
        f"\n{len(tasks)} tasks, outcome {dict(outcome)}, "
        f"valid tasks with leaking instances dropped: {flagged}"
    )
    assert outcome[("valid", None)] > 1000, outcome
    assert leaking_valid == []
    # The emulator derives tasks from field names only, so some take a label column's twin.
    assert outcome[("rejected", "answer_in_input")] > 0, outcome
    # Derived instructions are plain: no real task of the snapshot is suspicious.
    assert outcome[("rejected", "suspicious_content")] == 0, outcome
