"""Discover + collect against the Hub emulator serving the project's own snapshot: daily windows,
re-runs, changed revisions, explicit ids."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from dynosaur.emulators.hub import HubEmulator
from dynosaur.hub import collect, discover
from dynosaur.model import Window
from dynosaur.reasons import Reason
from dynosaur.settings import Settings
from dynosaur.store.datasets import collect_queue
from tests.emulators.conftest import at, created_on, own_index
from tests.hub.conftest import dataset_state, hub_settings, rows_of


def counts(store: Engine) -> tuple[int, int]:
    return (
        rows_of(store, "SELECT count(*) FROM hub_dataset")[0][0],
        rows_of(store, "SELECT count(*) FROM dataset_config")[0][0],
    )


def test_two_daily_windows_collect_only_that_days_new_datasets(
    store: Engine, settings: Settings
) -> None:
    with HubEmulator(now=at("2024-03-02T00:00:00")) as hub:
        s = hub_settings(settings, hub)
        day1 = discover(s, store, window=Window.day("2024-03-01"))
        assert day1.new_ids == collect_queue(store)
        collect(s, store, day1.new_ids)
        after_day1 = dataset_state(store)
        assert {row[0] for row in after_day1.values()} == created_on("2024-03-01")
        assert all(row[5] is not None for row in after_day1.values() if row[2] == "collected")

        hub.now = at("2024-03-03T00:00:00")
        day2 = discover(s, store, window=Window.day("2024-03-02"))
        new = rows_of(
            store, "SELECT dataset_id FROM hub_dataset WHERE id = ANY(:ids)", ids=day2.new_ids
        )
        assert {r[0] for r in new} == created_on("2024-03-02")
        assert collect_queue(store) == sorted(day2.new_ids)
        summary = collect(s, store, collect_queue(store))
        assert summary.total == len(created_on("2024-03-02"))

    # Day 1's rows were not touched by day 2's run: same ids, statuses, collected_at, updated_at.
    after_day2 = dataset_state(store)
    assert {i: after_day2[i] for i in after_day1} == after_day1
    assert set(after_day2) - set(after_day1) == set(day2.new_ids)
    statuses = rows_of(store, "SELECT status, reason, message FROM hub_dataset")
    assert all(s in ("collected", "skipped", "deferred", "failed") for s, _, _ in statuses)
    assert all(r and m for s, r, m in statuses if s != "collected")  # nothing silently dropped


def test_rerun_of_same_window_adds_no_rows(
    store: Engine, settings: Settings, own_hub: HubEmulator
) -> None:
    s = hub_settings(settings, own_hub)
    window = Window.parse("2024-03-01", "2024-03-03")
    first = discover(s, store, window=window)
    collect(s, store, collect_queue(store))
    before = counts(store)
    requests_before = len(own_hub.request_log)

    again = discover(s, store, window=window)
    assert again.new_ids == []
    assert again.seen == first.seen
    assert again.summary.by_status() == {"unchanged": first.seen}
    summary = collect(s, store, first.new_ids)  # asked again explicitly: nothing to redo
    assert summary.total == 0
    assert summary.figures["already_done"] == len(first.new_ids)
    assert counts(store) == before
    viewer_calls = [
        r for r in own_hub.request_log[requests_before:] if r["path"] != "/api/datasets"
    ]
    assert viewer_calls == []  # a collected dataset costs no request at all


def test_changed_sha_is_collected_again_as_a_new_revision(
    store: Engine, settings: Settings
) -> None:
    changed = sorted(created_on("2024-03-01"))[0]
    with HubEmulator(now=at("2024-03-02T00:00:00")) as hub:
        s = hub_settings(settings, hub)
        discover(s, store, window=Window.day("2024-03-01"))
        collect(s, store, collect_queue(store))
        old_configs = rows_of(
            store,
            "SELECT c.config_name FROM dataset_config c "
            "JOIN hub_dataset d ON d.id = c.hub_dataset_id WHERE d.dataset_id = :id",
            id=changed,
        )

        hub.set_revision(changed, sha="f" * 40, last_modified=at("2024-03-02T09:00:00"))
        hub.now = at("2024-03-03T00:00:00")
        day2 = discover(s, store, window=Window.day("2024-03-02"))
        assert day2.summary.figures.get("new_modified") == 1
        collect(s, store, collect_queue(store))

    revisions = rows_of(
        store,
        "SELECT sha, discovered_via, status FROM hub_dataset WHERE dataset_id = :id ORDER BY id",
        id=changed,
    )
    assert len(revisions) == 2
    assert revisions[1] == ("f" * 40, "modified", revisions[0][2])
    assert revisions[0][0] != "f" * 40
    new_configs = rows_of(
        store,
        "SELECT c.config_name FROM dataset_config c JOIN hub_dataset d ON d.id = c.hub_dataset_id "
        "WHERE d.dataset_id = :id AND d.sha = :sha",
        id=changed,
        sha="f" * 40,
    )
    assert sorted(new_configs) == sorted(old_configs) and new_configs


def test_explicit_ids_bypass_the_listing(
    store: Engine, settings: Settings, own_hub: HubEmulator
) -> None:
    s = hub_settings(settings, own_hub)
    wanted = sorted(created_on("2024-03-02"))[:2]
    found = discover(
        s, store, ids=[*wanted, "nobody/no-such-dataset", "x'; DROP TABLE hub_dataset; --"]
    )
    assert own_hub.requests_to("/api/datasets") == []
    assert len(found.new_ids) == 2
    assert found.summary.counts[("rejected", Reason.NOT_FOUND)] == 1
    assert found.summary.counts[("rejected", Reason.INVALID_ID)] == 1
    stored = rows_of(
        store, "SELECT dataset_id, discovered_via FROM hub_dataset ORDER BY dataset_id"
    )
    assert stored == [(i, "explicit") for i in wanted]
    assert collect_queue(store, ids=wanted[:1]) == found.new_ids[:1]
    collect(s, store, collect_queue(store, ids=wanted))
    assert collect_queue(store) == []


def test_limit_takes_the_newest_datasets_of_the_window(
    store: Engine, settings: Settings, own_hub: HubEmulator
) -> None:
    s = hub_settings(settings, own_hub)
    found = discover(s, store, window=Window.day("2024-03-02"), limit=2)
    day = [e for e in own_index() if e["created_at"].startswith("2024-03-02")]
    newest = {e["id"] for e in sorted(day, key=lambda e: e["created_at"])[-2:]}
    assert len(day) > 2
    stored = rows_of(
        store, "SELECT dataset_id FROM hub_dataset WHERE id = ANY(:ids)", ids=found.new_ids
    )
    assert {r[0] for r in stored} == newest
