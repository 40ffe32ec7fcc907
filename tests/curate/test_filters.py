"""Validity filters: each rule, its edge cases, and the order in which they apply."""

from __future__ import annotations

import pytest

from dynosaur.curate.filters import (
    check_fields_exist,
    check_input_is_output,
    check_output_field,
    check_parseable,
    filter_config_tasks,
    normalise_fields,
)
from dynosaur.model import Task
from dynosaur.reasons import Reason

FIELDS = {"context", "question", "answer", "label"}


def task(task_id: int = 1, instruction="Answer the question.", inputs=("question",), out="answer"):
    return Task(
        id=task_id,
        instruction=instruction,
        input_fields=tuple(inputs) if inputs is not None else None,
        output_field=out,
    )


def test_field_names_are_stripped_and_each_input_is_kept_once_in_order() -> None:
    read = normalise_fields(task(inputs=(" question", "context ", "question"), out=" answer "))
    assert (read.input_fields, read.output_field) == (("question", "context"), "answer")
    unread = normalise_fields(task(inputs=None, out=None))
    assert (unread.input_fields, unread.output_field) == (None, None)


def test_filtering_needs_stored_tasks_with_ids() -> None:
    with pytest.raises(ValueError, match="needs its id"):
        filter_config_tasks([task(task_id=None)], FIELDS)


def test_missing_or_blank_instruction_is_unparseable() -> None:
    assert check_parseable(task(instruction=None)).reason is Reason.UNPARSEABLE
    assert check_parseable(task(instruction="   \n")).reason is Reason.UNPARSEABLE
    assert check_parseable(task()) is None


def test_missing_or_blank_output_field_is_empty_output_field() -> None:
    assert check_output_field(task(out=None)).reason is Reason.EMPTY_OUTPUT_FIELD
    assert check_output_field(task(out=" ")).reason is Reason.EMPTY_OUTPUT_FIELD
    assert check_output_field(task()) is None


def test_unknown_input_or_output_field_is_named_in_the_message() -> None:
    bad_input = check_fields_exist(task(inputs=("question", "passage")), FIELDS)
    assert bad_input.reason is Reason.UNKNOWN_FIELD and "'passage'" in bad_input.message
    bad_output = check_fields_exist(task(out="answers"), FIELDS)
    assert bad_output.reason is Reason.UNKNOWN_FIELD and "'answers'" in bad_output.message
    assert check_fields_exist(task(inputs=("context", "question")), FIELDS) is None


def test_field_names_are_case_sensitive_like_the_data() -> None:
    assert check_fields_exist(task(inputs=("Question",)), FIELDS).reason is Reason.UNKNOWN_FIELD


def test_output_among_inputs_is_input_is_output() -> None:
    rejection = check_input_is_output(task(inputs=("question", "answer")))
    assert rejection.reason is Reason.INPUT_IS_OUTPUT and "'answer'" in rejection.message
    assert check_input_is_output(task()) is None


def test_filters_apply_in_the_mission_order() -> None:
    # unknown output field AND output among inputs: the earlier rule (unknown_field) wins
    both = task(inputs=("nope",), out="nope")
    assert filter_config_tasks([both], FIELDS)[1].reason is Reason.UNKNOWN_FIELD
    # no output field at all: empty_output_field before unknown_field
    assert filter_config_tasks([task(out=None, inputs=("x",))], FIELDS)[1].reason is (
        Reason.EMPTY_OUTPUT_FIELD
    )
    assert filter_config_tasks([task(instruction=None, out=None)], FIELDS)[1].reason is (
        Reason.UNPARSEABLE
    )


def test_second_task_with_same_normalised_instruction_is_a_duplicate() -> None:
    tasks = [
        task(1, "Answer the question."),
        task(2, "answer  the QUESTION", inputs=("context", "question")),
        task(3, "Answer the question using the context."),
    ]
    rejected = filter_config_tasks(tasks, FIELDS)
    assert set(rejected) == {2}
    assert rejected[2].reason is Reason.DUPLICATE_INSTRUCTION and "task 1" in rejected[2].message


def test_an_invalid_task_does_not_make_a_later_valid_one_a_duplicate() -> None:
    tasks = [task(1, "Answer the question.", out="nope"), task(2, "Answer the question.")]
    rejected = filter_config_tasks(tasks, FIELDS)
    assert rejected[1].reason is Reason.UNKNOWN_FIELD and 2 not in rejected


def test_label_suffix_does_not_make_instructions_different() -> None:
    tasks = [
        task(1, "Classify the question.", out="label"),
        task(2, "Classify the question. Answers must be one of a, b.", out="label"),
    ]
    assert filter_config_tasks(tasks, FIELDS)[2].reason is Reason.DUPLICATE_INSTRUCTION


def test_valid_tasks_pass_every_filter() -> None:
    tasks = [task(1), task(2, "Write a question for the answer.", ("answer",), "question")]
    assert filter_config_tasks(tasks, FIELDS) == {}


def test_parse_problems_are_rejected_with_their_own_reason():
    tasks = [
        Task(id=1, instruction="a", input_fields=None, output_field="label", problem="unparseable"),
        Task(
            id=2,
            instruction="b",
            input_fields=("context",),
            output_field="label",
            problem="multiple_output_fields",
            extra_output_fields=("question",),
        ),
        Task(id=3, instruction="c", input_fields=("context",), output_field=None),
    ]
    rejected = filter_config_tasks(tasks, FIELDS, multiple_output_fields="reject")
    assert {i: r.reason for i, r in rejected.items()} == {
        1: Reason.UNPARSEABLE,
        2: Reason.MULTIPLE_OUTPUT_FIELDS,
        3: Reason.EMPTY_OUTPUT_FIELD,
    }


def test_several_output_fields_keep_the_first_as_the_original_did() -> None:
    def several(id: int, inputs: tuple[str, ...], outputs: tuple[str, ...]) -> Task:
        return Task(
            id=id,
            instruction=f"Task {id}.",
            input_fields=inputs,
            output_field=outputs[0],
            problem="multiple_output_fields",
            extra_output_fields=outputs[1:],
        )

    tasks = [
        several(1, ("context",), ("label", "question")),  # kept: the output is 'label'
        several(2, ("context",), ("label", "no_such_field")),  # every name must exist
        several(3, ("question",), ("label", "question")),  # no output may be an input
    ]
    rejected = filter_config_tasks(tasks, FIELDS)
    assert {i: r.reason for i, r in rejected.items()} == {
        2: Reason.UNKNOWN_FIELD,
        3: Reason.INPUT_IS_OUTPUT,
    }
    assert "'question'" in rejected[3].message


def test_content_checks_run_after_the_field_filters_and_before_the_duplicate_check() -> None:
    from dynosaur.curate.filters import Rejection

    def no_links(t: Task) -> Rejection | None:
        if "http" in (t.instruction or "").casefold():
            return Rejection(Reason.SUSPICIOUS_CONTENT, "a link")
        return None

    tasks = [
        task(1, instruction="Answer the question. http://x.example/", inputs=("nope",)),
        task(2, instruction="Answer the question. http://x.example/"),
        task(3, instruction="answer the question. HTTP://x.example/", out="label"),
        task(4, instruction="Answer the question."),
    ]
    rejected = filter_config_tasks(tasks, FIELDS, [no_links])
    assert rejected[1].reason is Reason.UNKNOWN_FIELD  # field filters first
    assert rejected[2].reason is Reason.SUSPICIOUS_CONTENT
    assert rejected[3].reason is Reason.SUSPICIOUS_CONTENT  # not a duplicate of a rejected task
    assert 4 not in rejected
