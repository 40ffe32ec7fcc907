"""Answer leakage: tasks whose output is written, whole, in one of their inputs."""

from __future__ import annotations

from typing import Any

from dynosaur.curate import curate, leakage
from dynosaur.model import FieldInfo, Task
from dynosaur.reasons import Reason
from dynosaur.store import batches
from tests.curate.factory import StoreFactory

ACTS = ("commissive", "directive", "inform", "question")
DIALOGUE_FIELDS = {
    "Utterance": FieldInfo("Utterance", "string"),
    "Dialogue_Act": FieldInfo("Dialogue_Act", "class_label", ACTS),
    "Label": FieldInfo("Label", "class_label", ACTS),
}


def dialogue_rows(n: int = 20) -> list[dict[str, Any]]:
    """silicone/dyda_da-like rows: ``Label`` (an int, as a ClassLabel) names the dialogue act."""
    return [
        {"Utterance": f"utterance number {i}", "Dialogue_Act": ACTS[i % 4], "Label": i % 4}
        for i in range(n)
    ]


def task(inputs: tuple[str, ...], output: str) -> Task:
    return Task("Determine the dialogue act.", inputs, output, id=1)


def test_output_equal_to_a_class_label_input_in_every_row_is_rejected() -> None:
    rejection = leakage.check_task(
        task(("Utterance", "Label"), "Dialogue_Act"), DIALOGUE_FIELDS, dialogue_rows()
    )
    assert rejection is not None and rejection.reason is Reason.ANSWER_IN_INPUT
    assert "'Label'" in rejection.message and "20 of 20" in rejection.message
    assert (
        leakage.check_task(task(("Utterance",), "Dialogue_Act"), DIALOGUE_FIELDS, dialogue_rows())
        is None
    )


def test_case_and_spaces_are_normalised() -> None:
    rows = [{"a": f"  The   Answer {i} ", "b": f"the answer {i}"} for i in range(5)]
    rejection = leakage.check_task(Task("Copy.", ("a",), "b", id=1), {}, rows)
    assert rejection is not None and rejection.reason is Reason.ANSWER_IN_INPUT


def test_an_answer_span_inside_a_longer_passage_is_not_a_leak() -> None:
    rows = [
        {"context": f"The capital of country {i} is City{i}, a large town.", "answer": f"City{i}"}
        for i in range(10)
    ]
    assert leakage.check_task(Task("Answer.", ("context",), "answer", id=1), {}, rows) is None
    assert leakage.leaking_rows(rows, ("context",), "answer", {}) == {}


def test_two_columns_sharing_one_constant_value_leak_too() -> None:
    rows = [{"caption": f"c{i}", "female": False, "male": False} for i in range(5)]
    the_task = Task("Is it male?", ("caption", "female"), "male", id=1)
    rejection = leakage.check_task(the_task, {}, rows)
    assert rejection is not None and "5 of 5" in rejection.message


def test_a_minority_of_leaking_rows_is_under_the_threshold() -> None:
    rows = [{"q": f"q{i}", "a": f"q{i}" if i < 5 else f"a{i}"} for i in range(10)]
    the_task = Task("Answer.", ("q",), "a", id=1)
    assert leakage.check_task(the_task, {}, rows) is None  # 5 of 10: not "most rows"
    assert leakage.check_task(the_task, {}, rows, share=0.4) is not None
    assert sorted(leakage.leaking_rows(rows, ("q",), "a", {})) == [0, 1, 2, 3, 4]


def test_leaking_task_rejected_and_single_leaking_instances_dropped(
    factory: StoreFactory,
) -> None:
    ds = factory.dataset("silicone")
    config = factory.config(
        ds, "dyda_da", fields=list(DIALOGUE_FIELDS.values()), rows=dialogue_rows()
    )
    factory.task(
        config,
        "Determine the dialogue act of the utterance.",
        ["Utterance", "Label"],
        "Dialogue_Act",
    )
    # A QA config where 2 of 10 answers are the whole question: those 2 instances go.
    qa = factory.config(
        factory.dataset("org/qa"),
        rows=[
            {"question": f"q{i}", "answer": f"q{i}" if i < 2 else f"answer {i}"} for i in range(10)
        ],
    )
    factory.task(qa, "Answer the question.", ["question"], "answer")
    batch = batches.open_batch(factory.engine, "day1")
    summary = curate(factory.settings, factory.engine, batch.id)
    rows = {
        r.instruction: r
        for r in factory.rows("SELECT instruction, status, reason, message, notes, id FROM task")
    }
    leak = rows["Determine the dialogue act of the utterance."]
    assert (leak.status, leak.reason) == ("rejected", "answer_in_input")
    kept = rows["Answer the question."]
    assert (kept.status, kept.notes) == ("valid", ["answer_in_input"])
    outputs = [
        r.output for r in factory.rows("SELECT output FROM instance WHERE task_id = :t", t=kept.id)
    ]
    assert len(outputs) == 8 and not {"q0", "q1"} & set(outputs)
    assert summary.figures["instances_answer_in_input"] == 2
    assert summary.counts[("rejected", "answer_in_input")] == 1


def test_unicode_forms_fold_and_a_long_passage_never_equals_a_short_answer() -> None:
    rows = [{"a": "Straße  X", "b": "STRASSE x"}] * 3
    assert leakage.check_task(Task("Copy.", ("a",), "b", id=1), {}, rows) is not None
    passage = [{"p": "word " * 500, "b": "word"}] * 3
    assert leakage.leaking_rows(passage, ("p",), "b", {}) == {}
