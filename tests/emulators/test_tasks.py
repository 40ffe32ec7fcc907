"""The LLM emulator's answer policy, as pure functions."""

from __future__ import annotations

from dynosaur.emulators.tasks import (
    INVALID_KINDS,
    derive,
    replay,
    requested_tasks,
    strip_label_suffix,
)
from dynosaur.generate.blocks import DatasetBlock

NLI = DatasetBlock(
    "acme/nli",
    None,
    ["uid", "premise", "hypothesis", "label"],
    [
        {
            "uid": "1",
            "premise": "The ferry leaves the harbour at seven every morning.",
            "hypothesis": "The ferry sails daily.",
            "label": "entailment",
        },
        {
            "uid": "2",
            "premise": "Maria planted tomatoes in April and picked them in August.",
            "hypothesis": "Maria sells vegetables.",
            "label": "neutral",
        },
    ],
)


def test_label_suffix_is_stripped_from_recorded_instructions() -> None:
    text = "Classify the review. Answers must be one of positive, negative."
    assert strip_label_suffix(text) == "Classify the review."
    assert strip_label_suffix("Write a title.") == "Write a title."


def test_requested_tasks_reads_the_last_up_to_n_in_the_prompt() -> None:
    assert requested_tasks("no number here") == 3
    assert requested_tasks("Propose up to 5 tasks") == 5
    assert requested_tasks("up to three tasks ... now up to two tasks") == 2


def test_replay_prefers_the_exact_config_then_the_single_config_entry() -> None:
    reference = {
        ("d", "a"): [{"instruction": "A", "input_fields": ["x"], "output_field": "y"}],
        ("d", None): [{"instruction": "N", "input_fields": ["x"], "output_field": "y"}],
    }
    assert replay(DatasetBlock("d", "a", []), reference, 3)[0]["instruction"] == "A"
    assert replay(DatasetBlock("d", "b", []), reference, 3)[0]["instruction"] == "N"
    assert replay(DatasetBlock("e", None, []), reference, 3) is None


def test_derived_tasks_never_use_id_fields_and_are_deterministic() -> None:
    first = derive(NLI, 3, invalid_share=0.0)
    assert first == derive(NLI, 3, invalid_share=0.0)
    assert first.invalid == [] and len(first.tasks) == 3
    for task in first.tasks:
        assert "uid" not in task["input_fields"] and task["output_field"] != "uid"
    assert first.tasks[0]["output_field"] == "label"  # a label field is the first guess


def test_derived_seed_changes_the_choice_of_tasks_but_not_their_validity() -> None:
    answers = [derive(NLI, 2, invalid_share=0.0, seed=s).tasks for s in range(6)]
    assert len({str(a) for a in answers}) > 1
    for tasks in answers:
        for task in tasks:
            assert set(task["input_fields"]) | {task["output_field"]} <= set(NLI.fields)


def test_invalid_share_one_makes_every_task_invalid() -> None:
    answer = derive(NLI, 3, invalid_share=1.0)
    assert len(answer.invalid) == len(answer.tasks) == 3
    assert set(answer.invalid) <= set(INVALID_KINDS)


def test_one_field_dataset_still_gets_a_task() -> None:
    block = DatasetBlock("acme/lines", None, ["text"], [{"text": "A short line of text here."}])
    answer = derive(block, 3, invalid_share=0.0)
    assert answer.tasks == [
        {"instruction": answer.tasks[0]["instruction"], "input_fields": [], "output_field": "text"}
    ]
