"""Reading proposals out of LLM answers in every shape models write them."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from dynosaur.generate.parsing import answer_schema, parse_answer
from dynosaur.model import Task

QA = {
    "instruction": "Answer the question.",
    "input_fields": ["context", "question"],
    "output_field": "answer",
}
TITLE = {"instruction": "Write a title.", "input_fields": ["context"], "output_field": "title"}


def _parts(task: Task) -> tuple[str | None, tuple[str, ...] | None, str | None]:
    return task.instruction, task.input_fields, task.output_field


def test_json_list_gives_one_task_per_object_in_order() -> None:
    answer = parse_answer(json.dumps([QA, TITLE]))
    assert [_parts(t) for t in answer.tasks] == [
        ("Answer the question.", ("context", "question"), "answer"),
        ("Write a title.", ("context",), "title"),
    ]
    assert not answer.truncated


def test_structured_output_wrapper_is_unwrapped() -> None:
    answer = parse_answer(json.dumps({"tasks": [QA, TITLE]}))
    assert [t.output_field for t in answer.tasks] == ["answer", "title"]


def test_python_literal_dicts_with_output_field_as_list_are_read() -> None:
    # The original prompt produced Python reprs with the output field in a one-element list.
    text = repr([{**QA, "output_field": ["answer"]}, {**TITLE, "output_field": ["title"]}])
    assert "'instruction'" in text
    answer = parse_answer(text)
    assert [t.output_field for t in answer.tasks] == ["answer", "title"]


def test_fenced_code_with_prose_around_it_is_read() -> None:
    text = f"Here are the tasks:\n```json\n{json.dumps([QA])}\n```\nHope this helps!"
    assert [_parts(t) for t in parse_answer(text).tasks] == [
        ("Answer the question.", ("context", "question"), "answer")
    ]


def test_slightly_broken_json_is_repaired() -> None:
    text = (
        '[{"instruction": "Answer the question.", "input_fields": ["context", "question"], '
        '"output_field": "answer",},\n {instruction: "Write a title.", input_fields: '
        '["context"], output_field: "title"}]'
    )
    answer = parse_answer(text)
    assert [t.output_field for t in answer.tasks] == ["answer", "title"]
    assert answer.tasks[1].instruction == "Write a title."


def test_one_object_per_line_is_read() -> None:
    text = "\n".join(json.dumps(t) for t in (QA, TITLE))
    assert len(parse_answer(text).tasks) == 2


def test_truncated_answer_keeps_complete_tasks_and_is_marked() -> None:
    full = json.dumps([QA, TITLE, QA])
    cut = full[: full.rindex("{") + 25]
    answer = parse_answer(cut, finish_reason="length")
    assert [t.output_field for t in answer.tasks] == ["answer", "title"]
    assert answer.truncated


def test_truncated_wrapper_is_detected_without_finish_reason() -> None:
    full = json.dumps({"tasks": [QA, TITLE]})
    answer = parse_answer(full[:-20])
    assert [t.output_field for t in answer.tasks] == ["answer"]
    assert answer.truncated


def test_apostrophes_and_braces_inside_strings_do_not_confuse_the_reader() -> None:
    task = {
        "instruction": "Fill the {blank} in the passage's last line.",
        "input_fields": ["text"],
        "output_field": "word",
    }
    answer = parse_answer(json.dumps([task]))
    assert answer.tasks[0].instruction == task["instruction"]
    assert parse_answer(repr([task])).tasks[0].instruction == task["instruction"]


def test_raw_keeps_the_text_the_model_wrote_for_each_task() -> None:
    first = "{'instruction': 'A.', 'input_fields': ['x'], 'output_field': ['y']}"
    second = '{"instruction": "B.", "input_fields": ["y"], "output_field": "x"}'
    answer = parse_answer(f"[{first}, {second}]")
    assert [t.raw for t in answer.tasks] == [first, second]


def test_parts_of_the_wrong_shape_are_none_for_curate_to_reject() -> None:
    text = json.dumps([{"instruction": 7, "input_fields": [1, 2], "output_field": [3, "b"]}])
    (task,) = parse_answer(text).tasks
    assert _parts(task) == (None, None, None)
    assert task.raw.startswith("{")


def test_single_input_field_given_as_a_string_becomes_a_list() -> None:
    text = json.dumps([{"instruction": "Go.", "input_fields": "context", "output_field": "x"}])
    assert parse_answer(text).tasks[0].input_fields == ("context",)


def test_answer_without_any_task_gives_no_proposal() -> None:
    for text in ("I cannot help with that.", "", "[]", '{"foo": 1}', "[1, 2, 3]"):
        assert parse_answer(text).tasks == ()


def test_proposals_beyond_the_limit_are_counted_as_dropped() -> None:
    answer = parse_answer(json.dumps([QA, TITLE, QA, TITLE]), limit=3)
    assert len(answer.tasks) == 3 and answer.dropped == 1


def test_schema_wraps_the_list_in_an_object_as_structured_output_requires() -> None:
    schema = answer_schema(3)["json_schema"]["schema"]
    assert schema["type"] == "object" and schema["required"] == ["tasks"]
    assert schema["properties"]["tasks"]["items"]["required"] == [
        "instruction",
        "input_fields",
        "output_field",
    ]


words = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30)


@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "instruction": words.filter(str.strip),
                "input_fields": st.lists(words.filter(str.strip), min_size=1, max_size=3),
                "output_field": words.filter(str.strip),
            }
        ),
        max_size=4,
    )
)
def test_any_json_list_of_tasks_round_trips(tasks: list[dict]) -> None:
    answer = parse_answer(json.dumps(tasks, ensure_ascii=False))
    assert [t.instruction for t in answer.tasks] == [t["instruction"].strip() for t in tasks]
    assert [t.output_field for t in answer.tasks] == [t["output_field"].strip() for t in tasks]


@given(st.text(max_size=300))
def test_any_text_parses_without_raising(text: str) -> None:
    answer = parse_answer(text)
    assert all(isinstance(t.raw, str) for t in answer.tasks)


def test_a_sentence_where_an_object_belongs_is_kept_as_an_unreadable_proposal() -> None:
    answer = parse_answer(
        '[{"instruction": "Classify the review.", "input_fields": ["text"], '
        '"output_field": "label"}, "Write a poem about the label.", 7]'
    )
    assert [t.instruction for t in answer.tasks] == ["Classify the review.", None, None]
    assert answer.tasks[1].raw == "Write a poem about the label."
    assert answer.tasks[2].raw == "7"
    wrapped = parse_answer('{"tasks": [{"instruction": "Go.", "output_field": "x"}, "prose"]}')
    assert [(t.raw, t.instruction) for t in wrapped.tasks][1] == ("prose", None)


def test_field_parts_of_the_wrong_shape_carry_their_reason():
    answer = parse_answer(
        '[{"instruction": "a", "input_fields": ["x", 3], "output_field": "y"},'
        ' {"instruction": "b", "input_fields": ["x"], "output_field": ["y", "z"]},'
        ' {"instruction": "c", "input_fields": ["x"], "output_field": ["y"]}]'
    )
    assert [t.problem for t in answer.tasks] == ["unparseable", "multiple_output_fields", None]
    assert answer.tasks[2].output_field == "y"
    # Several output fields: the first is the output (the original's rule), the rest kept aside.
    assert (answer.tasks[1].output_field, answer.tasks[1].extra_output_fields) == ("y", ("z",))


def test_one_reason_per_cause_of_a_malformed_field_part() -> None:
    cases = [
        ({"input_fields": ["x"], "output_field": ["y", "z"]}, "multiple_output_fields", "y"),
        ({"input_fields": ["x"], "output_field": ["y", " y "]}, None, "y"),  # one name, twice
        ({"input_fields": ["x"], "output_field": ["", "y"]}, None, "y"),
        ({"input_fields": ["x", 3], "output_field": "y"}, "unparseable", "y"),
        ({"input_fields": [["x"]], "output_field": "y"}, "unparseable", "y"),
        ({"input_fields": 3, "output_field": "y"}, "unparseable", "y"),
        ({"input_fields": {"a": "x"}, "output_field": "y"}, "unparseable", "y"),
        ({"input_fields": ["x"], "output_field": 4}, "unparseable", None),
        ({"input_fields": ["x"], "output_field": ["y", 4]}, "unparseable", None),
        ({"input_fields": ["x", 3], "output_field": ["y", "z"]}, "unparseable", "y"),
        ({"input_fields": ["x"], "output_field": []}, None, None),  # empty_output_field in curate
    ]
    for parts, problem, output in cases:
        (task,) = parse_answer(json.dumps([{"instruction": "Go.", **parts}])).tasks
        assert (task.problem, task.output_field) == (problem, output), parts


def test_a_string_input_list_is_one_field_name_never_split() -> None:
    text = json.dumps([{"instruction": "Go.", "input_fields": "a, b", "output_field": "c"}])
    (task,) = parse_answer(text).tasks
    assert task.input_fields == ("a, b",) and task.problem is None
