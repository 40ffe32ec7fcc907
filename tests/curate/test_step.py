"""The curate step against real Postgres: claims, stored decisions, instances, store-wide
de-duplication, idempotence and recovery from a crash in the middle of a batch."""

from __future__ import annotations

import psycopg2.errors
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dynosaur.curate import curate
from dynosaur.model import FieldInfo
from dynosaur.settings import Settings
from dynosaur.store import batches
from dynosaur.store.tasks import claim_configs
from tests.curate.factory import StoreFactory


def statuses(factory: StoreFactory) -> dict[str, tuple[str, str | None]]:
    rows = factory.rows("SELECT instruction, status, reason FROM task ORDER BY id")
    return {r.instruction: (r.status, r.reason) for r in rows}


def test_valid_task_gets_instances_with_license_website_source_and_label_suffix(
    factory: StoreFactory,
) -> None:
    config = factory.sentiment_config("org/reviews", licenses=("mit", "cc-by-4.0"))
    factory.task(config, "Classify the review.", ["text"], "label")
    batch_id = factory.curate("day1")
    task = factory.rows("SELECT * FROM task")[0]
    assert (task.status, task.batch_id, task.labels) == ("valid", batch_id, ["neg", "pos"])
    assert task.instance_instruction == "Classify the review. Answers must be one of neg, pos."
    instances = factory.rows("SELECT * FROM instance ORDER BY row_index")
    assert len(instances) == 10
    first = instances[0]
    assert (first.input, first.output) == ("review number 0 of org/reviews", "neg")
    assert first.instruction == task.instance_instruction
    assert (first.license, first.license_class) == ("mit, cc-by-4.0", "permissive")
    assert first.website == "https://huggingface.co/datasets/org/reviews"
    assert first.source == "org/reviews"
    config_row = factory.rows("SELECT status, batch_id FROM dataset_config")[0]
    assert tuple(config_row) == ("curated", batch_id)


def test_every_rejection_is_stored_with_its_reason_and_a_message(factory: StoreFactory) -> None:
    config = factory.sentiment_config()
    factory.task(config, None, None, None, raw="this is not a task")
    factory.task(config, "Do something.", ["text"], None)
    factory.task(config, "Use the passage.", ["passage"], "label")
    factory.task(config, "Echo the label.", ["text", "label"], "label")
    factory.task(config, "Classify the review.", ["text"], "label")
    factory.task(config, "classify the  review", ["text"], "label")
    lopsided = factory.dataset("org/lopsided")
    rows = [{"text": f"t{i}", "label": "pos" if i else "neg"} for i in range(10)]
    factory.task(factory.config(lopsided, rows=rows), "Label it.", ["text"], "label")
    factory.curate("day1")
    got = {
        r.reason: r.message
        for r in factory.rows("SELECT reason, message FROM task WHERE status = 'rejected'")
    }
    assert set(got) == {
        "unparseable",
        "empty_output_field",
        "unknown_field",
        "input_is_output",
        "duplicate_instruction",
        "imbalanced_labels",
    }
    assert all(message for message in got.values())
    assert "'passage'" in got["unknown_field"] and "90%" in got["imbalanced_labels"]


def test_identical_task_on_a_new_revision_is_duplicate_in_store(factory: StoreFactory) -> None:
    first = factory.sentiment_config("org/reviews")
    original = factory.task(first, "Classify the review.", ["text"], "label")
    factory.publish("day1")
    second = factory.sentiment_config("org/reviews")  # same dataset id and config, new sha
    factory.task(second, "Classify the review!", ["text"], "label")
    factory.curate("day2")
    again = factory.rows("SELECT status, reason, message FROM task WHERE config_id = :c", c=second)
    assert (again[0].status, again[0].reason) == ("rejected", "duplicate_in_store")
    assert f"task {original}" in again[0].message


def test_a_near_duplicate_is_kept_and_flagged_by_default(factory: StoreFactory) -> None:
    # The original removed only identical tasks: a rewording stays valid, flagged and counted.
    text = "Read the review text and decide whether the customer liked the product"
    factory.task(factory.sentiment_config("org/r"), text, ["text"], "label")
    factory.publish("day1")
    config = factory.sentiment_config("org/r")
    factory.task(config, text + " or not", ["text"], "label")
    batch = batches.open_batch(factory.engine, "day2")
    summary = curate(factory.settings, factory.engine, batch.id)
    row = factory.rows("SELECT * FROM task WHERE instruction = :i", i=text + " or not")[0]
    assert (row.status, row.reason) == ("valid", None)
    assert row.notes == ["near_duplicate_in_store"] and "similar to task" in row.message
    assert summary.figures["near_duplicates"] == 1


def test_near_duplicate_rejection_only_for_the_same_fields(
    store: Engine, settings: Settings
) -> None:
    factory = StoreFactory(store, settings.model_copy(update={"near_duplicates": "reject"}))
    text = "Read the review text and decide whether the customer liked the product"
    factory.task(factory.sentiment_config("org/r"), text, ["text"], "label")
    factory.publish("day1")
    config = factory.sentiment_config("org/r")
    factory.task(config, text + " or not", ["text"], "label")  # same fields: near-duplicate
    factory.task(config, text + " in the text", ["label"], "text")  # other fields: kept
    factory.curate("day2")
    assert statuses(factory)[text + " or not"] == ("rejected", "near_duplicate_in_store")
    assert statuses(factory)[text + " in the text"][0] == "valid"


def test_near_duplicates_inside_one_batch_keep_the_first_when_rejected(
    store: Engine, settings: Settings
) -> None:
    factory = StoreFactory(store, settings.model_copy(update={"near_duplicates": "reject"}))
    config = factory.sentiment_config()
    text = "Given a customer review of a product, decide whether the review is positive"
    factory.task(config, text, ["text"], "label")
    factory.task(config, text + " overall", ["text"], "label")
    factory.curate("day1")
    assert statuses(factory)[text] == ("valid", None)
    assert statuses(factory)[text + " overall"] == ("rejected", "near_duplicate_in_store")


def test_same_task_on_another_config_or_dataset_is_kept(factory: StoreFactory) -> None:
    ds = factory.dataset("org/multi")
    rows = [{"text": f"row {i}", "label": "pos" if i % 2 else "neg"} for i in range(10)]
    for name in ("en", "fr"):
        factory.task(factory.config(ds, name, rows=rows), "Classify.", ["text"], "label")
    factory.task(factory.sentiment_config("org/other"), "Classify.", ["text"], "label")
    factory.curate("day1")
    assert factory.rows("SELECT count(*) AS n FROM task WHERE status = 'valid'")[0].n == 3
    names = {r.source for r in factory.rows("SELECT DISTINCT source FROM instance")}
    assert names == {"org/multi-en", "org/multi-fr", "org/other"}


def test_two_batches_never_claim_the_same_config(store: Engine, factory: StoreFactory) -> None:
    config = factory.sentiment_config()
    first, second = batches.open_batch(store, "a"), batches.open_batch(store, "b")
    assert claim_configs(store, first.id) == [config]
    assert claim_configs(store, second.id) == []


def test_running_curate_again_adds_nothing(
    settings: Settings, store: Engine, factory: StoreFactory
) -> None:
    factory.task(factory.sentiment_config(), "Classify the review.", ["text"], "label")
    batch_id = factory.curate("day1")
    before = factory.rows("SELECT count(*) AS n FROM instance")[0].n
    again = curate(settings, store, batch_id)
    assert again.total == 0
    assert factory.rows("SELECT count(*) AS n FROM instance")[0].n == before == 10


def test_a_chunk_the_store_refuses_rolls_back_alone_and_a_rerun_completes(
    settings: Settings, store: Engine, factory: StoreFactory
) -> None:
    configs = [factory.sentiment_config(f"org/ds{i}") for i in range(3)]
    tasks = [factory.task(config, "Classify the review.", ["text"], "label") for config in configs]
    # A leftover near-duplicate index row of the second config's task (as a store edited by hand
    # could hold): Postgres refuses that chunk's index rows, a real failure mid-batch.
    with store.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO task_lsh (task_id, band, band_key) VALUES (:t, 0, 0)"),
            {"t": tasks[1]},
        )
    batch = batches.open_batch(store, "day1")
    with pytest.raises(psycopg2.errors.UniqueViolation):
        curate(settings, store, batch.id, configs_per_chunk=1)
    done = factory.rows("SELECT config_id FROM task WHERE status = 'valid'")
    assert [r.config_id for r in done] == configs[:1]  # the failed chunk rolled back
    assert factory.rows("SELECT count(*) AS n FROM instance")[0].n == 10
    left = factory.rows("SELECT id FROM task WHERE status = 'proposed' ORDER BY id")
    assert [r.id for r in left] == tasks[1:]  # the third chunk was never reached
    with store.begin() as conn:
        conn.execute(
            sa.text("DELETE FROM task_lsh WHERE band_key = 0 AND task_id = :t"), {"t": tasks[1]}
        )
    summary = curate(settings, store, batch.id, configs_per_chunk=1)
    assert summary.by_status() == {"valid": 2}
    assert factory.rows("SELECT count(*) AS n FROM instance")[0].n == 30


def test_copy_round_trips_quotes_commas_newlines_backslashes_and_unicode(
    factory: StoreFactory,
) -> None:
    ds = factory.dataset('org/"quoted", name')
    tricky = ['say "hi", then\nleave', "back\\slash\t tab", "émoji 🦕 中文", "a,b,,c", '""']
    rows = [{"q": f"{t} #{i}", "a": f"{t} answer {i}"} for i, t in enumerate(tricky * 3)]
    config = factory.config(
        ds, rows=rows, fields=[FieldInfo("q", "string"), FieldInfo("a", "string")]
    )
    factory.task(config, "Answer it.", ["q"], "a")
    factory.curate("day1")
    got = factory.rows("SELECT input, output, source FROM instance ORDER BY row_index")
    assert [(r.input, r.output) for r in got] == [(r["q"], r["a"]) for r in rows]
    assert got[0].source == 'org/"quoted", name'


def test_curating_a_published_batch_does_nothing(
    settings: Settings, store: Engine, factory: StoreFactory
) -> None:
    factory.task(factory.sentiment_config(), "Classify the review.", ["text"], "label")
    batch_id = factory.curate("day1")
    batches.publish_batch(store, batch_id)
    factory.task(factory.sentiment_config("org/new"), "Classify the review.", ["text"], "label")
    assert curate(settings, store, batch_id).total == 0
    assert factory.rows("SELECT count(*) AS n FROM task WHERE status = 'proposed'")[0].n == 1
