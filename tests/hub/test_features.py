"""Features -> fields, ClassLabel integers -> names, and sample rows made safe to store."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from dynosaur.hub.features import (
    build_sample,
    describe_feature,
    features_from_viewer,
    fields_of,
    has_media,
    label_names,
    normalise_features,
    sample_fields,
    usable_fields,
)
from dynosaur.hub.text import CleanReport, clean_value
from dynosaur.model import FieldInfo
from dynosaur.reasons import Reason

STRING = {"dtype": "string", "_type": "Value"}
LABEL = {"names": ["negative", "positive"], "_type": "ClassLabel"}


def normalised(raw: dict[str, Any]) -> dict[str, Any]:
    features, problem = normalise_features(raw)
    assert problem is None
    assert features is not None
    return features


def test_fields_have_readable_types_and_label_names() -> None:
    features = normalised(
        {
            "text": STRING,
            "label": LABEL,
            "tags": {
                "feature": {"names": ["O", "B-PER"], "_type": "ClassLabel"},
                "_type": "Sequence",
            },
            "answers": {
                "feature": {"text": STRING, "answer_start": {"dtype": "int32", "_type": "Value"}},
                "_type": "Sequence",
            },
            "translation": {"languages": ["de", "en"], "_type": "Translation"},
            "image": {"_type": "Image"},
        }
    )
    assert fields_of(features) == [
        FieldInfo("text", "string"),
        FieldInfo("label", "class_label", ("negative", "positive")),
        FieldInfo("tags", "list<class_label>", ("O", "B-PER")),
        FieldInfo("answers", "dict"),
        FieldInfo("translation", "translation"),
        FieldInfo("image", "image"),
    ]
    assert [has_media(f) for f in features.values()] == [False] * 5 + [True]


def test_media_nested_in_a_record_is_found() -> None:
    feature = {"meta": {"caption": STRING, "audio": {"_type": "Audio"}}}
    assert has_media(feature["meta"])
    assert describe_feature(feature["meta"]) == ("dict<audio>", None)


def test_class_label_integers_become_names_at_any_depth() -> None:
    features = normalised(
        {
            "label": LABEL,
            "tags": {"feature": {"names": ["O", "B"], "_type": "ClassLabel"}, "_type": "Sequence"},
            "spans": {
                "feature": {"kind": {"names": ["x", "y"], "_type": "ClassLabel"}, "start": STRING},
                "_type": "Sequence",
            },
        }
    )
    row = {"label": 1, "tags": [0, 1, 1], "spans": {"kind": [1, 0], "start": ["3", "9"]}}
    named = {k: label_names(v, features[k]) for k, v in row.items()}
    assert named == {
        "label": "positive",
        "tags": ["O", "B", "B"],
        "spans": {"kind": ["y", "x"], "start": ["3", "9"]},
    }


def test_missing_label_is_none_and_out_of_range_labels_are_kept() -> None:
    assert label_names(-1, LABEL) is None
    assert label_names(7, LABEL) == 7
    assert label_names(True, LABEL) is True  # a bool is not a label index
    assert label_names("positive", LABEL) == "positive"


def test_deeply_nested_features_are_described_without_failing() -> None:
    feature: dict[str, Any] = STRING
    for _ in range(400):
        feature = {"feature": feature, "_type": "Sequence"}
    features, _ = normalise_features({"deep": feature, "text": STRING})
    assert features is not None
    ftype, _ = describe_feature(features["deep"])
    assert ftype.startswith("list<list<") and ftype.endswith(">")
    assert len(ftype) < 100
    value: Any = "x"
    for _ in range(400):
        value = [value]
    assert label_names(value, features["deep"]) == value


def test_unknown_feature_types_are_read_as_sent() -> None:
    features, problem = normalise_features({"vec": {"_type": "FancyTensor"}, "text": STRING})
    assert problem is not None and "as sent" in problem
    assert fields_of(features or {}) == [
        FieldInfo("vec", "fancytensor"),
        FieldInfo("text", "string"),
    ]


def test_viewer_feature_list_becomes_a_mapping() -> None:
    listed = [
        {"feature_idx": 0, "name": "a", "type": STRING},
        {"feature_idx": 1, "name": "b", "type": LABEL},
        "junk",
    ]
    assert features_from_viewer(listed) == {"a": STRING, "b": LABEL}


def test_sample_rows_hold_label_names_cleaned_text_and_cut_values() -> None:
    features = normalised({"text": STRING, "label": LABEL})
    rows = [
        {"text": "fine", "label": 0},
        {"text": "nul\x00byte and lone \udc80 surrogate", "label": 1},
        {"text": "x" * 500, "label": -1},
    ]
    sample = build_sample(features, rows, max_rows=100, max_chars=100)
    assert [r["label"] for r in sample.rows] == ["negative", "positive", None]
    assert sample.rows[1]["text"] == "nulbyte and lone \ufffd surrogate"
    assert len(sample.rows[2]["text"]) == 100
    assert sample.notes == [Reason.TEXT_CLEANED, Reason.ROW_VALUES_TRUNCATED]
    json.dumps(sample.rows, allow_nan=False).encode("utf-8")  # storable as it is


def test_sample_keeps_at_most_max_rows() -> None:
    features = normalised({"a": STRING, "b": STRING})
    sample = build_sample(
        features, [{"a": str(i), "b": "x"} for i in range(150)], max_rows=100, max_chars=100
    )
    assert len(sample.rows) == 100
    assert sample.notes == []


def test_translation_config_is_flattened_into_its_languages() -> None:
    features = normalised({"translation": {"languages": ["de", "en"], "_type": "Translation"}})
    fields, flattened = sample_fields(features)
    assert (fields, flattened) == (
        [FieldInfo("de", "string"), FieldInfo("en", "string")],
        "translation",
    )
    sample = build_sample(
        features, [{"translation": {"de": "Hallo", "en": "Hello"}}], max_rows=10, max_chars=100
    )
    assert sample.rows == [{"de": "Hallo", "en": "Hello"}]
    assert usable_fields(sample) == fields


def test_fields_empty_in_every_row_are_not_usable() -> None:
    features = normalised({"a": STRING, "b": STRING, "c": STRING})
    sample = build_sample(
        features,
        [{"a": "x", "b": "", "c": None}, {"a": "y", "b": "  ", "c": None}],
        max_rows=10,
        max_chars=100,
    )
    assert [f.name for f in usable_fields(sample)] == ["a"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_cleaned_values_are_always_storable_in_jsonb(value: Any) -> None:
    report = CleanReport()
    out = clean_value(value, report, max_chars=50, max_items=3)
    text = json.dumps(out, allow_nan=False, ensure_ascii=False)
    text.encode("utf-8")  # no lone surrogate
    assert "\\u0000" not in text
    if not report.cleaned and not report.truncated:
        assert out == value


def test_a_long_list_in_a_short_row_is_cut() -> None:
    report = CleanReport()
    out = clean_value({"ids": list(range(2000))}, report, max_chars=10_000, max_items=1000)
    assert len(out["ids"]) == 1000
    assert report.truncated


def test_long_field_names_are_cut_without_collisions_and_keep_their_values() -> None:
    prefix = "q" * 250
    first, second = prefix + "_first", prefix + "_second"
    features = normalised({first: STRING, second: STRING, "label": LABEL})
    rows = [{first: "one", second: "two", "label": 1}]
    sample = build_sample(features, rows, max_rows=10, max_chars=1000)
    names = [f.name for f in sample.fields]
    assert len(set(names)) == 3 and all(len(name) <= 200 for name in names)
    cut_first, cut_second = names[0], names[1]
    assert cut_first != cut_second and cut_first.startswith("q" * 150)
    # Each value stays under its own (cut) column, and the rows' keys are the fields' names.
    assert sample.rows == [{cut_first: "one", cut_second: "two", "label": "positive"}]
    assert Reason.ROW_VALUES_TRUNCATED in sample.notes  # a cut name is noted like a cut value


def test_a_long_name_is_cut_the_same_way_everywhere() -> None:
    name = "x" * 300
    report = CleanReport()
    key = next(iter(clean_value({name: 1, "y": 2}, report)))
    assert [f.name for f in fields_of({name: STRING})] == [key]
    assert len(key) == 200 and report.truncated
    assert clean_value({"short": 1}, CleanReport()) == {"short": 1}
