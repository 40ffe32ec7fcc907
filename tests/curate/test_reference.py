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
from dynosaur.reasons import Reason
from dynosaur.settings import Settings
from tests.conftest import SHARED_REFERENCE, SHARED_SNAPSHOT
from tests.curate.factory import live_settings


def _reference() -> list[dict]:
    return [json.loads(line) for line in SHARED_REFERENCE.read_text().splitlines() if line]


# The rules a replay runs under: ``shipped``, the defaults; ``original``, only the original's
# rules (the leakage rule of issue 17, which the original did not have, switched off).
RULES: dict[str, dict[str, object]] = {"shipped": {}, "original": {"leakage_filter": False}}


@pytest.fixture(params=sorted(RULES))
def replayed(
    request: pytest.FixtureRequest, settings: Settings, store: Engine
) -> Iterator[tuple[str, Engine]]:
    """Every reference dataset grown from the shared snapshot with the reference tasks replayed,
    under each set of rules."""
    ids = sorted({r["dataset"] for r in _reference()})
    with (
        HubEmulator(SHARED_SNAPSHOT, now=datetime(2023, 1, 1, tzinfo=UTC)) as hub,
        LLMEmulator(reference=SHARED_REFERENCE) as llm,
    ):
        # Every language, no benchmark list: the reference predates both filters.
        grow(
            live_settings(settings, hub, llm, languages=[], benchmarks=[], **RULES[request.param]),
            store,
            request_for(ids=ids),
        )
        yield request.param, store


def _outputs(value: object) -> tuple[str, ...]:
    """The output field(s) as written: a name, or a list of names."""
    if isinstance(value, list):
        return tuple(str(v) for v in value)
    return (str(value),) if value else ()


def _curated(engine: Engine) -> dict[tuple, tuple[str | None, str, str | None]]:
    """Every stored task by (dataset, normalised instruction, inputs, outputs as written):
    (config, status, reason). The outputs are read from the proposal's raw text, so a task
    naming several output fields is found too."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT d.dataset_id, c.config_name, t.raw, t.instruction, t.input_fields, "
                "t.status, t.reason FROM task t "
                "JOIN dataset_config c ON c.id = t.config_id "
                "JOIN hub_dataset d ON d.id = c.hub_dataset_id"
            )
        ).all()
    out = {}
    for r in rows:
        written = json.loads(r.raw) if r.raw and r.raw.startswith("{") else {}
        key = (
            r.dataset_id,
            normalize_instruction(r.instruction or ""),
            tuple(r.input_fields or ()),
            _outputs(written.get("output_field")),
        )
        out[key] = (r.config_name, r.status, r.reason)
    return out


# Every reference task that reaches curate and is not kept, with its reason. Keyed by (dataset,
# first 40 characters of the instruction). A proposal naming several output fields (26 of the
# reference's 492) is kept as the original kept it: its output is the first field named.
ORIGINAL_LOSSES: dict[tuple[str, str], str] = {
    # Classification balance, judged on the sample rows as the original does: adversarial_qa's
    # title is 'Brain' on all 66 rows; great_code's has_bug / bug_kind_name / error_location are
    # constant over 100 rows.
    ("adversarial_qa", "Given a question and context, predict th"): "imbalanced_labels",
    ("adversarial_qa", "Can you write a title for the passage?"): "imbalanced_labels",
    ("great_code", "Given the source code, identify the line"): "imbalanced_labels",
    ("great_code", "Given the source code, identify the type"): "imbalanced_labels",
    ("great_code", "Given the source code, identify whether "): "imbalanced_labels",
}
# Under the shipped rules, also the answer in the input (issue 17's leakage rule, beyond the
# original, made for this very case): silicone's Label column holds the same names as its
# Dialogue_Act / Emotion output, so each of these tasks answers itself.
LEAKING: dict[tuple[str, str], str] = {
    ("silicone", "Given a dialogue act, please predict the"): "answer_in_input",
    ("silicone", "Given a label, please generate a dialogu"): "answer_in_input",
    ("silicone", "Given the Speaker and Label, predict the"): "answer_in_input",
    ("silicone", "Given the dialogue and emotion, predict "): "answer_in_input",
    ("silicone", "Given the dialogue and label, predict th"): "answer_in_input",
}
EXPECTED = {
    "original": (ORIGINAL_LOSSES, 0.98),
    "shipped": ({**ORIGINAL_LOSSES, **LEAKING}, 0.96),
}


@pytest.mark.shared_snapshot
def test_reference_tasks_survive_the_filters(replayed: tuple[str, Engine]) -> None:
    rules, engine = replayed
    expected, share = EXPECTED[rules]
    curated = _curated(engine)
    outcome: Counter[tuple[str, str | None]] = Counter()
    losses: dict[tuple[str, str], str] = {}
    several = 0
    for ref in _reference():
        key = (
            ref["dataset"],
            normalize_instruction(ref["instruction"]),
            tuple(ref["input_fields"]),
            _outputs(ref["output_field"]),
        )
        found = curated.get(key)
        if found is None or ref["config"] not in (None, found[0]):
            continue  # never reached curate: the config was not collected, or beyond 3 tasks
        _config, status, reason = found
        outcome[(status, reason)] += 1
        if len(ref["output_field"]) > 1:
            several += 1
            assert reason != "multiple_output_fields", ref
        if status != "valid":
            losses[(ref["dataset"], ref["instruction"][:40])] = str(reason)
    reached = sum(outcome.values())
    kept = outcome[("valid", None)]
    print(f"{rules} rules: reference tasks reaching curate: {reached}, kept: {kept} "
          f"({kept / reached:.1%})")  # fmt: skip
    for loss, reason in sorted(losses.items()):
        print("lost:", reason, loss)
    # Measured: 311 reach curate, 283 kept (91.0%); of the 293 with one output field, 283 kept
    # (96.6%). Losses: 18 multiple_output_fields and 5 imbalanced_labels (rules of the original),
    # 5 answer_in_input (the leakage rule). Near-duplicates are flagged, not rejected.
    print(f"naming several output fields: {several}")
    # Measured: 304 reach curate (18 of them naming several output fields); original rules: 299
    # kept (98.4%), the 5 losses imbalanced_labels; shipped rules: 294 kept (96.7%), plus the 5
    # silicone tasks that answer themselves. Near-duplicates are flagged, not rejected.
    assert reached >= 300 and several >= 15, outcome
    assert kept / reached >= share, outcome
    # Every loss is listed with its reason; a loss that goes away is fine (a rule relaxed).
    unexpected = {k: v for k, v in losses.items() if expected.get(k) != v}
    assert not unexpected, unexpected


# The defect of an injected task, read from the task itself as the LLM answered it.
def _defect(item: object, fields: set[str]) -> str | None:
    if not isinstance(item, dict):
        return "unparseable"
    inputs, output = item.get("input_fields") or [], item.get("output_field")
    outputs = output if isinstance(output, list) else [output]
    if not all(isinstance(name, str) for name in [*inputs, *outputs]):
        return "unparseable"
    if len(set(outputs)) > 1:
        return "multiple_output_fields"
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
    # Several output fields are a defect only when the setting says so (by default the first is
    # the output, as in the original): the injection test runs with every defect on.
    with (
        HubEmulator(now=datetime(2024, 3, 5, tzinfo=UTC)) as hub,
        LLMEmulator(invalid_share=0.35, seed=11) as llm,
    ):
        grow(
            live_settings(settings, hub, llm, multiple_output_fields="reject"),
            store,
            request_for(since="2024-03-01", until="2024-03-05"),
        )
        injected = Counter(k for e in llm.request_log for k in e["outcome"].get("invalid", []))
    with store.connect() as conn:
        answers = conn.execute(
            sa.text(
                "SELECT g.id, l.response, c.fields FROM generation g "
                "JOIN llm_call l ON l.id = g.llm_call_id "
                "JOIN dataset_config c ON c.id = g.config_id "
                "WHERE g.status = 'succeeded'"
            )
        ).all()
        tasks = {
            (r.generation_id, r.position): (r.status, r.reason)
            for r in conn.execute(
                sa.text("SELECT generation_id, position, status, reason FROM task")
            ).all()
        }
        unusable = conn.execute(
            sa.text("SELECT count(*) FROM llm_call WHERE 'llm_unusable_answer' = ANY(notes)")
        ).scalar_one()
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
    # An answer none of whose items is a task (a lone injected sentence) is unusable: asked again
    # (a distinct request), never curated; every other injected defect reaches curate.
    assert sum(injected.values()) - unusable <= sum(checked.values()), (checked, injected)
    assert sum(checked.values()) <= sum(injected.values()), (checked, injected)
    assert checked["unparseable"] > 0
    assert checked["unknown_field"] and checked["input_is_output"] and checked["empty_output_field"]
    assert checked["multiple_output_fields"]


@pytest.mark.skipif(
    not hasattr(Reason, "SUSPICIOUS_CONTENT"), reason="curate has no suspicious_content filter yet"
)
def test_every_injected_suspicious_task_is_rejected_as_suspicious_content(
    settings: Settings, store: Engine
) -> None:
    """The emulator appends links, instructions to the reader and key-like secrets to a share
    of its valid tasks, and obeys instructions injected into card text: none may be kept."""
    with (
        HubEmulator(now=datetime(2024, 3, 5, tzinfo=UTC)) as hub,
        LLMEmulator(suspicious_share=0.4, obedient=True, seed=5) as llm,
    ):
        grow(
            live_settings(settings, hub, llm),
            store,
            request_for(since="2024-03-01", until="2024-03-05"),
        )
        injected = sum(len(e["outcome"].get("suspicious", [])) for e in llm.request_log)
    marks = ("https://", "http://", "reveal your API key", "sk-proj-")
    with store.connect() as conn:
        tasks = conn.execute(sa.text("SELECT instruction, status, reason FROM task")).all()
    suspicious = [t for t in tasks if t.instruction and any(m in t.instruction for m in marks)]
    assert injected > 0 and len(suspicious) == injected
    assert {(t.status, t.reason) for t in suspicious} == {("rejected", "suspicious_content")}
