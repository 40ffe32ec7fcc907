"""The project's own snapshot (dynosaur/data/snapshot) holds what the demo and the tests rely on."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import date

import pytest
from datasets import ClassLabel, Features, Image, List

from dynosaur.emulators.snapshot import DEFAULT_SNAPSHOT, Snapshot


@pytest.fixture(scope="module")
def snapshot() -> Snapshot:
    return Snapshot()


def features(snapshot: Snapshot, dataset_id: str, config: str = "default") -> Features:
    raw = snapshot.infos(dataset_id)[config]["features"]
    return Features.from_dict(raw)


def test_creation_dates_cover_four_days_with_the_fixtures_first(snapshot: Snapshot) -> None:
    days = Counter(e.created_at.date() for e in snapshot.entries.values())
    assert len(snapshot.entries) == 25
    assert days[date(2024, 3, 1)] == 4
    assert all(6 <= days[date(2024, 3, d)] <= 8 for d in (2, 3, 4))
    fixtures = [e for e in snapshot.entries.values() if e.id.startswith("dynosaur-fixtures/")]
    assert {e.created_at.date() for e in fixtures} == {date(2024, 3, 1)}
    modified = [
        e for e in snapshot.entries.values() if e.last_modified.date() > e.created_at.date()
    ]
    assert len(modified) >= 2
    assert all(e.last_modified.date() <= date(2024, 3, 4) for e in modified)


def test_fixture_field_names_follow_the_real_datasets(snapshot: Snapshot) -> None:
    expected = {
        ("dynosaur-fixtures/squad-like", "plain_text"): [
            "id",
            "title",
            "context",
            "question",
            "answers",
        ],
        ("dynosaur-fixtures/anli-like", "plain_text"): [
            "uid",
            "premise",
            "hypothesis",
            "label",
            "reason",
        ],
        ("dynosaur-fixtures/mathqa-like", "default"): [
            "Problem",
            "Rationale",
            "options",
            "correct",
            "annotated_formula",
            "linear_formula",
            "category",
        ],
        ("dynosaur-fixtures/commongen-like", "default"): ["concept_set_idx", "concepts", "target"],
    }
    for (dataset_id, config), names in expected.items():
        assert list(features(snapshot, dataset_id, config)) == names
    anli = features(snapshot, "dynosaur-fixtures/anli-like", "plain_text")["label"]
    assert anli.names == ["entailment", "neutral", "contradiction"]
    squad = features(snapshot, "dynosaur-fixtures/squad-like", "plain_text")["answers"]
    assert set(squad) == {"text", "answer_start"}


def test_fixture_cards_have_a_summary_only_where_the_prompts_expect_one(
    snapshot: Snapshot,
) -> None:
    with_summary = {"dynosaur-fixtures/squad-like", "dynosaur-fixtures/anli-like"}
    for dataset_id in [i for i in snapshot.entries if i.startswith("dynosaur-fixtures/")]:
        card = snapshot.card(dataset_id)
        assert (card.summary is not None) == (dataset_id in with_summary), dataset_id


def test_squad_like_answer_offsets_point_at_the_answer(snapshot: Snapshot) -> None:
    for split in ("train", "validation"):
        for row in snapshot.rows("dynosaur-fixtures/squad-like", "plain_text", split):
            text, start = row["answers"]["text"][0], row["answers"]["answer_start"][0]
            assert row["context"][start : start + len(text)] == text


def test_every_config_has_rows_that_match_its_features(snapshot: Snapshot) -> None:
    for dataset_id, entry in snapshot.entries.items():
        for config in entry.configs:
            declared = features(snapshot, dataset_id, config.name)
            for split, count in config.splits.items():
                rows = snapshot.rows(dataset_id, config.name, split)
                assert rows is not None and len(rows) == count <= 100
                for row in rows:
                    assert list(row) == list(declared), (dataset_id, config.name)
                    if "image" not in row:  # viewer image cells are URLs, not encodable
                        declared.encode_example(row)


def test_rows_read_as_real_text_not_placeholders() -> None:
    placeholder = re.compile(r"\b(dummy|lorem ipsum|this is a test|foo|bar baz)\b", re.IGNORECASE)
    for path in (DEFAULT_SNAPSHOT / "datasets").rglob("*.jsonl"):
        assert not placeholder.search(path.read_text()), path


def test_the_snapshot_covers_every_case_the_pipeline_must_handle(snapshot: Snapshot) -> None:
    entries = snapshot.entries
    labels = {
        (d, name): f.names
        for d, e in entries.items()
        for c in e.configs
        for name, f in features(snapshot, d, c.name).items()
        if isinstance(f, ClassLabel)
    }
    assert any(len(names) == 2 for names in labels.values())
    assert any(len(names) > 2 for names in labels.values())
    priorities = Counter(
        r["priority"] for r in snapshot.rows("helpdesk-ai/ticket-priority", "default", "train")
    )
    assert max(priorities.values()) / sum(priorities.values()) > 0.5  # imbalanced
    mcq = features(snapshot, "trivia-collective/science-mcq")
    assert isinstance(mcq["choices"], List)
    assert len(entries["langtools/sentence-pairs-multi"].configs) == 3
    assert isinstance(features(snapshot, "pixelfarm/leaf-disease-images")["image"], Image)
    assert entries["medtext-consortium/clinical-abbreviations"].gated == "manual"
    assert entries["slowviewer/event-descriptions"].viewer_ready_after is not None
    assert snapshot.card("broken-cards/faq-pairs").yaml_error is not None
    assert "license" not in snapshot.card("anon-uploads/recipe-steps").data
    assert list(features(snapshot, "wordsmith/one-liners")) == ["text"]
    assert snapshot.card("polyglot-data/themen-saetze-de").data["language"] == ["de"]
    assert snapshot.card("quietlab/country-facts").summary == "[More Information Needed]"
    news = snapshot.card("newsroom-nlp/local-news-summaries").data
    assert news["task_categories"] == ["summarization"]


def test_cards_carry_license_language_and_the_expected_sections(snapshot: Snapshot) -> None:
    for dataset_id in snapshot.entries:
        card = snapshot.card(dataset_id)
        assert "### Data Fields" in card.text, dataset_id
        assert "### Supported Tasks and Leaderboards" in card.text, dataset_id
        if card.data is None or dataset_id == "anon-uploads/recipe-steps":
            continue
        assert card.data.get("license"), dataset_id
        if dataset_id != "pixelfarm/leaf-disease-images":
            assert card.data.get("language"), dataset_id


def test_index_lines_are_valid_json_with_known_keys() -> None:
    keys = {"id", "created_at", "last_modified", "sha", "has_card", "has_dataset_infos", "configs"}
    optional = {"gated", "viewer_ready_after"}
    for line in (DEFAULT_SNAPSHOT / "index.jsonl").read_text().splitlines():
        record = json.loads(line)
        assert keys <= set(record) <= keys | optional
