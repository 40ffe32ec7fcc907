"""Curation measured on realistic proposals: the original Dynosaur's tasks replayed over the
shared snapshot must survive the filters, and every invalid task the LLM emulator injects must be
rejected with the reason that names its defect."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dynosaur.curate.dedup import normalize_instruction
from dynosaur.emulators.hub import HubEmulator
from dynosaur.emulators.llm import LLMEmulator
from dynosaur.pipeline import grow, request_for
from dynosaur.settings import Settings
from tests.conftest import SHARED_REFERENCE, SHARED_SNAPSHOT
from tests.curate.factory import live_settings


def _reference() -> list[dict]:
    return [json.loads(line) for line in SHARED_REFERENCE.read_text().splitlines() if line]


@pytest.fixture
def replayed(settings: Settings, store: Engine) -> Iterator[Engine]:
    """Every reference dataset grown from the shared snapshot with the reference tasks replayed."""
    ids = sorted({r["dataset"] for r in _reference()})
    with (
        HubEmulator(SHARED_SNAPSHOT, now=datetime(2023, 1, 1, tzinfo=UTC)) as hub,
        LLMEmulator(reference=SHARED_REFERENCE) as llm,
    ):
        # Every language: the reference was made before language filtering existed.
        grow(live_settings(settings, hub, llm, languages=[]), store, request_for(ids=ids))
        yield store


@pytest.mark.shared_snapshot
def test_reference_tasks_survive_the_filters(replayed: Engine) -> None:
    with replayed.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT d.dataset_id, c.config_name, t.instruction, t.input_fields, "
                "t.output_field, t.status, t.reason FROM task t "
                "JOIN dataset_config c ON c.id = t.config_id "
                "JOIN hub_dataset d ON d.id = c.hub_dataset_id"
            )
        ).all()
    curated = {
        (
            r.dataset_id,
            normalize_instruction(r.instruction or ""),
            tuple(r.input_fields or ()),
            r.output_field,
        ): (r.config_name, r.status, r.reason)
        for r in rows
    }
    outcome: Counter[tuple[str, str | None]] = Counter()
    for ref in _reference():
        key = (
            ref["dataset"],
            normalize_instruction(ref["instruction"]),
            tuple(ref["input_fields"]),
            ref["output_field"][0],
        )
        found = curated.get(key)
        if found is not None and ref["config"] in (None, found[0]):
            outcome[(found[1], found[2])] += 1
    reached = sum(outcome.values())
    share = outcome[("valid", None)] / reached
    # Measured: 296 of 311 (95.2%). The 15 losses, each a rule on this data: 7 imbalanced_labels
    # judged on the sample rows (adversarial_qa's title is 'Brain' on all 66 rows, 'Yale_University'
    # on 31; great_code's has_bug / bug_kind_name / error_location are constant over 100 rows),
    # 8 answer_in_input (silicone's Label and Dialogue_Act / Emotion columns hold the same names,
    # md_gender_bias image_chat's 'female' flag equals the 'male' output in 4 of 5 rows: the input
    # gives the answer away). Near-duplicates are flagged, not rejected, as the original
    # removed only identical tasks.
    assert reached >= 300, outcome
    assert share >= 0.95, outcome
    assert set(outcome) <= {
        ("valid", None),
        ("rejected", "unknown_field"),
        ("rejected", "imbalanced_labels"),
        ("rejected", "answer_in_input"),
    }, outcome


# The defect of an injected task, read from the task itself as the LLM answered it.
def _defect(item: object, fields: set[str]) -> str | None:
    if not isinstance(item, dict):
        return "unparseable"
    inputs, output = item.get("input_fields") or [], item.get("output_field")
    if not output:
        return "empty_output_field"
    if any(name not in fields for name in [*inputs, output]):
        return "unknown_field"
    if output in inputs:
        return "input_is_output"
    return None


def test_every_injected_invalid_task_is_rejected_with_its_reason(
    settings: Settings, store: Engine
) -> None:
    with (
        HubEmulator(now=datetime(2024, 3, 5, tzinfo=UTC)) as hub,
        LLMEmulator(invalid_share=0.35, seed=11) as llm,
    ):
        grow(
            live_settings(settings, hub, llm),
            store,
            request_for(since="2024-03-01", until="2024-03-05"),
        )
        injected = Counter(k for e in llm.request_log for k in e["outcome"].get("invalid", []))
    with store.connect() as conn:
        answers = conn.execute(
            sa.text(
                "SELECT g.id, l.response, c.fields FROM generation g "
                "JOIN llm_call l ON l.id = g.llm_call_id "
                "JOIN dataset_config c ON c.id = g.config_id"
            )
        ).all()
        tasks = {
            (r.generation_id, r.position): (r.status, r.reason)
            for r in conn.execute(
                sa.text("SELECT generation_id, position, status, reason FROM task")
            ).all()
        }
    checked: Counter[str] = Counter()
    for generation_id, response, fields in answers:
        items = json.loads(response)
        names = {f["name"] for f in fields}
        for position, item in enumerate(items):
            defect = _defect(item, names)
            if defect is None:
                continue
            # Every item keeps its place: a sentence where an object belongs is a task row too.
            status, reason = tasks[(generation_id, position)]
            assert (status, reason) == ("rejected", defect), (item, status, reason)
            checked[defect] += 1
    assert sum(checked.values()) == sum(injected.values()), (checked, injected)
    assert checked["unparseable"] > 0
    assert checked["unknown_field"] and checked["input_is_output"] and checked["empty_output_field"]
