"""Batch lifecycle: run keys, versions, empty and failed batches, and what becomes visible."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dynosaur.curate import curate
from dynosaur.model import Window
from dynosaur.settings import Settings
from dynosaur.store import batches
from dynosaur.store.batches import BatchStateError
from tests.curate.factory import StoreFactory


def curated_batch(factory: StoreFactory, key: str) -> int:
    """A building batch of run key ``key`` with one valid task (10 instances)."""
    factory.task(factory.sentiment_config(f"org/{key}"), f"Classify {key}.", ["text"], "label")
    return factory.curate(key)


def visible(store: Engine, sql: str = "SELECT count(*) FROM collection") -> int:
    with store.connect() as conn:
        return conn.execute(sa.text(sql)).scalar_one()


def test_same_run_key_finds_the_same_batch(store: Engine) -> None:
    window = Window.day("2024-03-01")
    first = batches.open_batch(store, "window:x", window=window, dag_run_id="r1")
    again = batches.open_batch(store, "window:x", window=window)
    assert again.id == first.id and again.status == "building"
    assert (first.window_start, first.window_end) == (window.start, window.end)
    assert batches.find_batch(store, "window:x").id == first.id
    assert batches.find_batch(store, "window:y") is None


def test_publishing_gives_consecutive_versions_and_version_n_is_cumulative(
    settings: Settings, store: Engine, factory: StoreFactory
) -> None:
    one = batches.publish_batch(store, curated_batch(factory, "d1"))
    two = batches.publish_batch(store, curated_batch(factory, "d2"))
    assert (one.status, one.version, two.version) == ("published", 1, 2)
    assert one.figures["instances"] == 10 and one.figures["tasks_valid"] == 1
    assert one.published_at is not None and one.cost_usd == pytest.approx(0.001)
    assert visible(store, "SELECT count(*) FROM collection_at(1)") == 10
    assert visible(store, "SELECT count(*) FROM collection_at(2)") == 20
    assert batches.latest_version(store) == 2
    assert [b.version for b in batches.published_versions(store)] == [1, 2]


def test_publishing_again_returns_the_same_version(
    settings: Settings, store: Engine, factory: StoreFactory
) -> None:
    batch_id = curated_batch(factory, "d1")
    assert batches.publish_batch(store, batch_id).version == 1
    assert batches.publish_batch(store, batch_id).version == 1
    assert batches.open_batch(store, "d1").version == 1


def test_batch_without_a_valid_task_is_empty_and_takes_no_version(
    settings: Settings, store: Engine, factory: StoreFactory
) -> None:
    factory.task(factory.sentiment_config(), "Bad.", ["nope"], "label")
    batch = batches.open_batch(store, "d1")
    curate(settings, store, batch.id)
    empty = batches.publish_batch(store, batch.id)
    assert (empty.status, empty.version, empty.reason) == ("empty", None, "empty_batch")
    assert empty.figures["tasks_rejected"] == 1
    nxt = batches.publish_batch(store, curated_batch(factory, "d2"))
    assert nxt.version == 1


def test_building_batch_is_invisible_until_published(
    settings: Settings, store: Engine, factory: StoreFactory
) -> None:
    batch_id = curated_batch(factory, "d1")
    assert visible(store) == 0
    assert visible(store, "SELECT count(*) FROM task_overview") == 0
    batches.publish_batch(store, batch_id)
    assert visible(store) == 10


def test_failed_batch_shows_nothing_and_its_configs_go_to_a_later_run(
    settings: Settings, store: Engine, factory: StoreFactory
) -> None:
    batch_id = curated_batch(factory, "d1")
    failed = batches.fail_batch(store, batch_id, "generate crashed")
    assert (failed.status, failed.reason, failed.message) == (
        "failed",
        "run_failed",
        "generate crashed",
    )
    assert visible(store, "SELECT count(*) FROM instance") == 0
    assert visible(store, "SELECT count(*) FROM task_lsh") == 0
    assert visible(store, "SELECT count(*) FROM task WHERE status = 'proposed'") == 1
    assert visible(store, "SELECT count(*) FROM dataset_config WHERE status = 'generated'") == 1
    with pytest.raises(BatchStateError, match="failed"):
        batches.publish_batch(store, batch_id)
    later = batches.open_batch(store, "d2")
    curate(settings, store, later.id)
    assert batches.publish_batch(store, later.id).figures["instances"] == 10


def test_reopening_a_failed_run_rebuilds_its_batch(
    settings: Settings, store: Engine, factory: StoreFactory
) -> None:
    batch_id = curated_batch(factory, "d1")
    batches.fail_batch(store, batch_id, "crash")
    reopened = batches.open_batch(store, "d1")
    assert (reopened.id, reopened.status, reopened.reason) == (batch_id, "building", None)
    curate(settings, store, batch_id)
    assert batches.publish_batch(store, batch_id).version == 1


def test_failing_a_published_batch_changes_nothing(
    settings: Settings, store: Engine, factory: StoreFactory
) -> None:
    batch_id = curated_batch(factory, "d1")
    batches.publish_batch(store, batch_id)
    assert batches.fail_batch(store, batch_id, "late failure").status == "published"
    assert visible(store) == 10


def test_publish_refuses_while_tasks_of_the_batch_are_not_curated(
    settings: Settings, store: Engine, factory: StoreFactory
) -> None:
    batch = batches.open_batch(store, "d1")
    config = factory.sentiment_config()
    factory.task(config, "Classify.", ["text"], "label")
    curate(settings, store, batch.id)
    factory.task(config, "A late proposal.", ["text"], "label")  # arrives after curate
    with pytest.raises(BatchStateError, match="proposed"):
        batches.publish_batch(store, batch.id)
    curate(settings, store, batch.id)
    assert batches.publish_batch(store, batch.id).figures["tasks_valid"] == 2


def test_concurrent_publishers_get_distinct_versions(
    settings: Settings, store: Engine, factory: StoreFactory
) -> None:
    ids = [curated_batch(factory, f"d{i}") for i in range(4)]
    results: dict[int, int] = {}

    def publish(batch_id: int) -> None:
        results[batch_id] = batches.publish_batch(store, batch_id).version

    threads = [threading.Thread(target=publish, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results.values()) == [1, 2, 3, 4]


def test_unknown_batch_is_a_clear_error(store: Engine) -> None:
    with pytest.raises(BatchStateError, match="no batch 999"):
        batches.get_batch(store, 999)
