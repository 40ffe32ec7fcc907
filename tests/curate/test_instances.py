"""Instance construction: every rule of the mission with its edge cases, and a property test that
construction never crashes and never emits text Postgres cannot store."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dynosaur.curate.instances import (
    MAX_CHARS,
    build_instances,
    clean_text,
    render_input,
    render_value,
)
from dynosaur.model import FieldInfo
from dynosaur.reasons import Reason

S = "string"


def fields(**types: str) -> dict[str, FieldInfo]:
    return {name: FieldInfo(name, t) for name, t in types.items()}


def outputs_of(construction) -> list[str]:
    return [i.output for i in construction.instances]


# --- input rendering ------------------------------------------------------------------------


def test_single_input_field_is_its_raw_value() -> None:
    row = {"question": "  Who wrote it? ", "answer": "Me"}
    assert render_input(["question"], row, fields(question=S)) == "Who wrote it?"


def test_several_input_fields_are_named_and_quoted() -> None:
    row = {"premise": "A dog runs.", "hypothesis": "An animal moves.", "n": 3}
    text = render_input(["premise", "hypothesis", "n"], row, fields(premise=S, hypothesis=S))
    assert text == "premise is 'A dog runs.'. hypothesis is 'An animal moves.'. n is '3'."


def test_choice_list_becomes_lettered_options() -> None:
    row = {"question": "2+2?", "choices": ["3", "4", "5"]}
    assert render_input(["choices"], row, {}) == "A. '3', B. '4', C. '5'."
    both = render_input(["question", "choices"], row, {})
    assert both == "question is '2+2?'. choices is A. '3', B. '4', C. '5'."


def test_choice_detection_ignores_case_and_needs_a_list() -> None:
    assert render_value("answerChoices", ["x", "y"]) == ("A. 'x', B. 'y'", False)
    assert render_value("choice", "just text") == ("just text", True)


def test_dict_of_lists_choices_become_lettered_options_with_their_own_letters() -> None:
    # CommonsenseQA's shape: the given letters are kept, in the lists' order.
    choices = {"label": ["A", "B", "C"], "text": ["ignore", "enforce", "authority"]}
    assert render_value("choices", choices) == ("A. 'ignore', B. 'enforce', C. 'authority'", False)
    row = {"question": "Who?", "choices": choices}
    assert render_input(["question", "choices"], row, {}) == (
        "question is 'Who?'. choices is A. 'ignore', B. 'enforce', C. 'authority'."
    )
    assert render_input(["choices"], row, {}) == "A. 'ignore', B. 'enforce', C. 'authority'."
    # ARC numbers some options "1", "2": kept as given.
    numbered = {"text": ["red", "blue"], "label": ["1", "2"]}
    assert render_value("choices", numbered) == ("1. 'red', 2. 'blue'", False)


def test_dict_choices_without_usable_letters_get_generated_ones() -> None:
    assert render_value("answer_choices", {"text": ["x", "y"]}) == ("A. 'x', B. 'y'", False)
    mismatched = {"text": ["x", "y", "z"], "label": ["A", "B"]}
    assert render_value("choices", mismatched) == ("A. 'x', B. 'y', C. 'z'", False)
    repeated = {"text": ["x", "y"], "label": ["A", "A"]}
    assert render_value("choices", repeated) == ("A. 'x', B. 'y'", False)


def test_dict_choices_without_an_options_list_stay_json() -> None:
    odd = {"start": [1, 2], "end": [3, 4]}
    assert render_value("choices", odd) == ('{"start": [1, 2], "end": [3, 4]}', False)
    nested = {"text": [{"a": 1}], "label": ["A"]}
    assert render_value("choices", nested)[0].startswith("{")


def test_other_lists_are_quoted_items_and_dicts_are_json() -> None:
    assert render_value("tokens", ["The", "cat"]) == ("'The', 'cat'", False)
    assert render_value("answers", {"text": ["Paris"], "start": [3]}) == (
        '{"text": ["Paris"], "start": [3]}',
        False,
    )
    assert render_value("tokens", []) is None and render_value("d", {}) is None


def test_class_label_inputs_and_list_items_use_label_names() -> None:
    info = FieldInfo("tags", "list<class_label>", ("O", "PER"))
    assert render_value("tags", [0, 1, 1], info) == ("'O', 'PER', 'PER'", False)


def test_row_with_a_missing_or_empty_input_value_is_skipped() -> None:
    rows = [
        {"a": "x", "b": "", "out": "1"},
        {"a": "x", "out": "2"},
        {"a": None, "b": "y", "out": "3"},
        {"a": "x", "b": "y", "out": "4"},
    ]
    many = [{"a": f"x{i}", "b": "y", "out": f"o{i}"} for i in range(20)]
    built = build_instances("Do it.", ["a", "b"], "out", {}, rows + many)
    assert [i.row_index for i in built.instances][:1] == [3]
    assert len(built.instances) == 21


# --- outputs ----------------------------------------------------------------------------------


def test_output_field_typed_as_list_or_dict_is_non_scalar_output() -> None:
    rows = [{"q": "x", "answers": ["a"]}]
    for kind in ("list<string>", "dict", "translation"):
        built = build_instances("Answer.", ["q"], "answers", fields(q=S, answers=kind), rows)
        assert built.rejection.reason is Reason.NON_SCALAR_OUTPUT and not built.instances


def test_output_value_that_is_a_list_rejects_the_whole_task() -> None:
    rows = [{"q": f"q{i}", "a": f"a{i}"} for i in range(15)] + [{"q": "z", "a": ["x", "y"]}]
    built = build_instances("Answer.", ["q"], "a", fields(q=S, a=S), rows)
    assert built.rejection.reason is Reason.NON_SCALAR_OUTPUT
    assert "row 15" in built.rejection.message


def test_class_label_outputs_are_names_and_unlabelled_rows_are_skipped() -> None:
    info = {"t": FieldInfo("t", S), "y": FieldInfo("y", "class_label", ("neg", "pos"))}
    rows = [{"t": f"t{i}", "y": i % 2} for i in range(6)] + [{"t": "unlabelled", "y": -1}]
    built = build_instances("Classify.", ["t"], "y", info, rows)
    assert outputs_of(built) == ["neg", "pos"] * 3


def test_scalars_of_every_kind_are_text() -> None:
    rows = [{"q": f"q{i}", "a": v} for i, v in enumerate([True, 2, 2.5, " s ", None, 0])]
    many = rows + [{"q": f"x{i}", "a": f"long answer {i}"} for i in range(10)]
    assert outputs_of(build_instances("A.", ["q"], "a", {}, many))[:5] == [
        "True",
        "2",
        "2.5",
        "s",
        "0",
    ]


# --- classification ------------------------------------------------------------------------


def binary(n_pos: int, n: int = 10) -> list[dict[str, Any]]:
    return [{"t": f"text {i}", "y": "yes" if i < n_pos else "no"} for i in range(n)]


def test_binary_majority_of_70_percent_is_kept_and_71_is_rejected() -> None:
    kept = build_instances("Is it?", ["t"], "y", {}, binary(7))
    assert kept.rejection is None and kept.labels == ("yes", "no")
    rejected = build_instances("Is it?", ["t"], "y", {}, binary(71, 100))
    assert rejected.rejection.reason is Reason.IMBALANCED_LABELS
    assert "71%" in rejected.rejection.message


def test_multiclass_majority_above_half_is_rejected() -> None:
    def rows(counts: dict[str, int]) -> list[dict[str, str]]:
        labels = [label for label, n in counts.items() for _ in range(n)]
        return [{"t": f"t{i}", "y": label} for i, label in enumerate(labels)]

    assert build_instances("C.", ["t"], "y", {}, rows({"a": 5, "b": 3, "c": 2})).rejection is None
    too_many = build_instances("C.", ["t"], "y", {}, rows({"a": 6, "b": 2, "c": 2}))
    assert too_many.rejection.reason is Reason.IMBALANCED_LABELS


def test_a_single_output_value_is_imbalanced() -> None:
    built = build_instances("C.", ["t"], "y", {}, [{"t": f"t{i}", "y": "same"} for i in range(10)])
    assert built.rejection.reason is Reason.IMBALANCED_LABELS


def test_samples_under_ten_rows_are_not_judged_as_classification() -> None:
    rows = [{"t": f"t{i}", "y": "same"} for i in range(9)]
    built = build_instances("Extract the date.", ["t"], "y", {}, rows)
    assert built.rejection is None and built.labels is None
    assert built.instruction == "Extract the date." and len(built.instances) == 9


def test_balance_is_judged_on_the_sample_rows_not_the_deduplicated_instances() -> None:
    # 19 identical rows and one other: two distinct instances (50/50), but 95% of the rows.
    rows = [{"t": "Brain", "y": "Brain"}] * 19 + [{"t": "Heart", "y": "Heart"}]
    built = build_instances("Give the title.", ["t"], "y", {}, rows)
    assert built.rejection is not None and built.rejection.reason is Reason.IMBALANCED_LABELS
    assert "95% of 20 rows" in built.rejection.message


def test_class_label_output_on_a_small_sample_gets_its_label_space() -> None:
    info = {"y": FieldInfo("y", "class_label", ("neg", "pos"))}
    built = build_instances("Sentiment?", ["t"], "y", info, [{"t": "good", "y": "pos"}])
    assert built.labels == ("neg", "pos") and built.rejection is None
    assert built.instruction == "Sentiment? Answers must be one of neg, pos."


def test_more_than_ten_distinct_outputs_is_not_classification() -> None:
    rows = [{"t": f"t{i}", "y": f"v{i % 11}"} for i in range(22)]
    built = build_instances("Generate.", ["t"], "y", {}, rows)
    assert built.rejection is None and built.labels is None and built.instruction == "Generate."


def test_label_suffix_when_every_label_is_at_most_15_characters() -> None:
    built = build_instances("Is it so", ["t"], "y", {}, binary(5))
    assert built.instruction == "Is it so. Answers must be one of yes, no."
    assert all(len(label) <= 15 for label in built.labels)


def test_no_label_suffix_when_a_label_is_longer_than_15_characters() -> None:
    rows = [{"t": f"t{i}", "y": "a" * 16 if i % 2 else "b"} for i in range(10)]
    built = build_instances("Pick.", ["t"], "y", {}, rows)
    assert built.instruction == "Pick." and built.labels == ("b", "a" * 16)


def test_class_label_space_is_the_full_label_list_in_class_order() -> None:
    info = {"y": FieldInfo("y", "class_label", ("neg", "neutral", "pos"))}
    rows = [{"t": f"t{i}", "y": "pos" if i % 2 else "neg"} for i in range(10)]
    built = build_instances("Sentiment?", ["t"], "y", info, rows)
    assert built.labels == ("neg", "neutral", "pos")
    assert built.instruction.endswith("Answers must be one of neg, neutral, pos.")


def test_an_existing_label_suffix_is_replaced_not_doubled() -> None:
    built = build_instances("Is it? Answers must be one of 0, 1.", ["t"], "y", {}, binary(5))
    assert built.instruction == "Is it? Answers must be one of yes, no."
    free = [{"t": f"t{i}", "y": f"answer {i}"} for i in range(12)]
    free_built = build_instances("Write. Answers must be one of x.", ["t"], "y", {}, free)
    assert free_built.instruction == "Write."


# --- text hygiene and limits --------------------------------------------------------------


def test_inputs_and_outputs_are_cut_at_2000_characters() -> None:
    rows = [{"t": str(i) + "x" * 5000, "y": str(i) + "y" * 3000} for i in range(12)]
    built = build_instances("Copy.", ["t"], "y", {}, rows)
    assert {len(i.input) for i in built.instances} == {MAX_CHARS}
    assert {len(i.output) for i in built.instances} == {MAX_CHARS}
    assert "value_truncated" in built.notes


def test_nul_bytes_controls_and_lone_surrogates_are_removed() -> None:
    assert clean_text("a\x00b\x07c\td\ne\ud800f") == "abc\td\nef"
    rows = [{"t": f"bad\x00 text {i}\udcff", "y": f"out\x00{i}"} for i in range(12)]
    built = build_instances("Fix\x00.", ["t"], "y", {}, rows)
    assert built.instruction == "Fix."
    assert all("\x00" not in i.input + i.output for i in built.instances)
    assert built.instances[0].input == "bad text 0" and "text_cleaned" in built.notes


def test_identical_input_output_pairs_are_kept_once() -> None:
    rows = [{"t": "same", "y": "one"}] * 3 + [{"t": f"t{i}", "y": f"o{i}"} for i in range(11)]
    built = build_instances("Do.", ["t"], "y", {}, rows)
    assert [i.row_index for i in built.instances][:2] == [0, 3]


def test_task_without_any_usable_row_is_no_instances() -> None:
    rows = [{"t": "", "y": "a"}, {"t": "x", "y": None}, "not a row", {"other": 1}]
    built = build_instances("Do.", ["t"], "y", {}, rows)
    assert built.rejection.reason is Reason.NO_INSTANCES and not built.instances
    assert build_instances("Do.", ["t"], "y", {}, []).rejection.reason is Reason.NO_INSTANCES


# --- property: arbitrary rows never crash construction ------------------------------------

any_text = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=40)
scalars = st.none() | st.booleans() | st.integers() | st.floats() | any_text
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner, max_size=3),
    max_leaves=8,
)
names = st.sampled_from(["a", "b", "choices", "label"])
field_types = st.sampled_from(["string", "int64", "class_label", "list<string>", "dict", "bool"])
field_infos = st.dictionaries(
    names,
    st.builds(
        lambda t, labels: (t, labels),
        field_types,
        st.none() | st.lists(any_text, min_size=1, max_size=4).map(tuple),
    ),
)
rows_strategy = st.lists(
    st.dictionaries(names, values, max_size=4) | values, max_size=25
)  # rows that are not dicts happen in broken data


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    instruction=any_text,
    inputs=st.lists(names, min_size=0, max_size=3),
    output=names,
    infos=field_infos,
    rows=rows_strategy,
)
def test_construction_never_crashes_and_emits_storable_text(
    instruction: str, inputs: list[str], output: str, infos: dict, rows: list
) -> None:
    fields = {n: FieldInfo(n, t, labels) for n, (t, labels) in infos.items()}
    built = build_instances(instruction, inputs, output, fields, rows)
    assert (built.rejection is None) == bool(built.instances)
    for text in [built.instruction] + [t for i in built.instances for t in (i.input, i.output)]:
        assert "\x00" not in text
        text.encode("utf-8")  # no lone surrogates
    for inst in built.instances:
        assert inst.input and inst.output
        assert len(inst.input) <= MAX_CHARS and len(inst.output) <= MAX_CHARS
        assert 0 <= inst.row_index < len(rows)
    if built.labels is not None:
        assert set(outputs_of(built)) <= set(built.labels)
