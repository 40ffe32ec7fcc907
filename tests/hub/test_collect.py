"""Collect against the Hub emulator: skip and defer rules, retries, config cap, the metadata that
task generation reads back."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy.engine import Engine

from dynosaur.emulators.hub import HubEmulator
from dynosaur.errors import ConfigNotFound
from dynosaur.hub import collect, discover
from dynosaur.model import Window
from dynosaur.reasons import Reason
from dynosaur.settings import Settings
from dynosaur.store.datasets import collect_queue, load_config_metadata
from tests.emulators.conftest import AFTER_ALL, SQUAD, own_index
from tests.hub.conftest import hub_settings, rows_of, store_revision

EVERYTHING = Window.parse("2024-01-01", "2024-06-01")


def by_dataset(store: Engine) -> dict[str, tuple]:
    rows = rows_of(store, "SELECT dataset_id, status, reason, notes, attempts FROM hub_dataset")
    return {r[0]: tuple(r[1:]) for r in rows}


def test_own_snapshot_outcomes_each_carry_a_status_and_reason(
    store: Engine, settings: Settings, own_hub: HubEmulator
) -> None:
    s = hub_settings(settings, own_hub)
    discover(s, store, window=EVERYTHING)
    summary = collect(s, store, collect_queue(store))
    outcome = by_dataset(store)
    assert len(outcome) == len(own_index()) == summary.total

    gated = {e["id"] for e in own_index() if e.get("gated")}
    assert gated and all(outcome[i][:2] == ("skipped", Reason.GATED) for i in gated)
    assert outcome["polyglot-data/themen-saetze-de"][:2] == (
        "skipped",
        Reason.LANGUAGE_NOT_ALLOWED,
    )
    assert outcome["anon-uploads/recipe-steps"][:2] == ("skipped", Reason.NO_LICENSE)
    assert outcome["pixelfarm/leaf-disease-images"][:2] == ("skipped", Reason.NO_USABLE_CONFIG)
    assert outcome["wordsmith/one-liners"][:2] == ("skipped", Reason.NO_USABLE_CONFIG)
    faq = outcome["broken-cards/faq-pairs"]
    assert faq[0] == "collected" and Reason.CARD_UNPARSEABLE in faq[2]

    configs = dict(
        (r[0], r[1:])
        for r in rows_of(
            store,
            "SELECT d.dataset_id, c.status, c.reason, c.message FROM dataset_config c "
            "JOIN hub_dataset d ON d.id = c.hub_dataset_id WHERE c.status = 'skipped'",
        )
    )
    assert configs["pixelfarm/leaf-disease-images"][0:2] == ("skipped", Reason.MEDIA_FIELD)
    assert configs["wordsmith/one-liners"][0:2] == ("skipped", Reason.TOO_FEW_FIELDS)
    assert all(message for _, _, message in configs.values())
    assert summary.by_status()["collected"] >= 15


def test_collected_config_reads_back_as_config_metadata(
    store: Engine, settings: Settings, own_hub: HubEmulator
) -> None:
    s = hub_settings(settings, own_hub)
    found = discover(s, store, ids=["dynosaur-fixtures/anli-like"])
    collect(s, store, found.new_ids)
    config_id = rows_of(store, "SELECT id FROM dataset_config WHERE status = 'collected'")[0][0]
    meta = load_config_metadata(store, config_id)
    assert meta.dataset_id == "dynosaur-fixtures/anli-like"
    assert meta.config_name == "plain_text"
    assert [f.name for f in meta.fields] == ["uid", "premise", "hypothesis", "label", "reason"]
    label = next(f for f in meta.fields if f.name == "label")
    assert label.labels == ("entailment", "neutral", "contradiction")
    assert {row["label"] for row in meta.sample_rows} <= set(label.labels)  # names, not ints
    assert len(meta.sample_rows) == 15  # all of train
    assert meta.has_description
    split, splits = rows_of(store, "SELECT sample_split, splits FROM dataset_config")[0]
    assert split == "train" and set(splits) == {"train", "validation"}
    with pytest.raises(ConfigNotFound):
        load_config_metadata(store, config_id + 1000)


def test_viewer_not_ready_defers_then_a_later_run_collects(
    store: Engine, settings: Settings
) -> None:
    slow = next(e for e in own_index() if e.get("viewer_ready_after"))
    created = datetime.fromisoformat(slow["created_at"].replace("Z", "+00:00"))
    with HubEmulator(now=created + timedelta(hours=1)) as hub:
        s = hub_settings(settings, hub, hub_defer_s=3600.0)
        found = discover(s, store, ids=[slow["id"]])
        summary = collect(s, store, found.new_ids)
        assert summary.counts[("deferred", Reason.VIEWER_NOT_READY)] == 1
        status, reason, attempts, due = rows_of(
            store,
            "SELECT status, reason, attempts, next_attempt_at > now() FROM hub_dataset",
        )[0]
        assert (status, reason, attempts, due) == ("deferred", Reason.VIEWER_NOT_READY, 1, True)
        assert collect_queue(store) == []  # not due yet
        assert collect_queue(store, ids=[slow["id"]]) == found.new_ids  # asked for: now

        hub.now = created + timedelta(days=2)
        collect(s, store, collect_queue(store, ids=[slow["id"]]))
    assert by_dataset(store)[slow["id"]][:2] == ("collected", None)
    assert rows_of(store, "SELECT count(*) FROM dataset_config")[0][0] >= 1


def test_viewer_never_ready_gives_up_after_the_last_attempt(
    store: Engine, settings: Settings
) -> None:
    target = SQUAD
    with HubEmulator(now=AFTER_ALL, viewer_not_ready=[target]) as hub:
        s = hub_settings(settings, hub, viewer_max_attempts=3)
        found = discover(s, store, ids=[target])
        for attempt in (1, 2):
            assert collect_queue(store) == found.new_ids  # hub_defer_s=0: due at once
            collect(s, store, collect_queue(store))
            assert by_dataset(store)[target] == ("deferred", Reason.VIEWER_NOT_READY, [], attempt)
        collect(s, store, collect_queue(store))
    assert by_dataset(store)[target] == ("failed", Reason.VIEWER_GAVE_UP, [], 3)
    assert collect_queue(store) == []


def test_retries_through_429_and_5xx_give_the_same_result(
    store: Engine, settings: Settings
) -> None:
    window = Window.parse("2024-03-01", "2024-03-03")
    results = []
    for faults in (0.0, 0.25):
        with store.begin() as conn:
            conn.exec_driver_sql("TRUNCATE dataset_config, hub_dataset RESTART IDENTITY CASCADE")
        with HubEmulator(now=AFTER_ALL, retry_after=0, seed=7) as hub:
            s = hub_settings(settings, hub, hub_max_retries=10)
            discover(s, store, window=window)
            listed = len(hub.request_log)
            hub.configure(rate_429=faults, rate_5xx=faults)  # a clean listing, faulty collect
            summary = collect(s, store, collect_queue(store))
            answered = hub.request_log[listed:]
        assert summary.figures["requests"] == len(answered)  # every attempt counted
        results.append((by_dataset(store), [r["status"] for r in answered]))
    (clean, clean_statuses), (faulty, faulty_statuses) = results
    assert faulty == clean
    assert 429 not in clean_statuses
    assert 429 in faulty_statuses and {500, 502, 503} & set(faulty_statuses)
    assert len(faulty_statuses) > len(clean_statuses)


def test_exhausted_rate_limit_defers_every_dataset_and_fails_none(
    store: Engine, settings: Settings, own_hub: HubEmulator
) -> None:
    s = hub_settings(settings, own_hub, hub_max_retries=1)
    found = discover(s, store, window=Window.parse("2024-03-01", "2024-03-02"))
    own_hub.configure(rate_429=1.0)
    summary = collect(s, store, found.new_ids)
    assert summary.by_status() == {"deferred": len(found.new_ids)}
    assert summary.counts[("deferred", Reason.RATE_LIMITED)] == len(found.new_ids)
    messages = rows_of(store, "SELECT message FROM hub_dataset")
    assert all("429" in m for (m,) in messages)
    assert rows_of(store, "SELECT count(*) FROM dataset_config")[0][0] == 0


def test_configs_beyond_the_cap_are_kept_as_skipped_rows(
    store: Engine, settings: Settings, own_hub: HubEmulator
) -> None:
    multi = next(e for e in own_index() if len(e["configs"]) >= 3)
    s = hub_settings(settings, own_hub, max_configs_per_dataset=2)
    collect(s, store, discover(s, store, ids=[multi["id"]]).new_ids)
    configs = rows_of(store, "SELECT config_name, status, reason FROM dataset_config ORDER BY id")
    assert len(configs) == len(multi["configs"])
    capped = [c for c in configs if c[2] == Reason.CONFIG_CAP]
    assert len(capped) == len(multi["configs"]) - 2
    assert all(status == "skipped" for _, status, _ in capped)
    viewer_rows = own_hub.requests_to("/first-rows") + own_hub.requests_to("/rows")
    assert len(viewer_rows) == 2  # capped configs cost no request


def test_token_is_sent_with_every_request_and_never_stored(
    store: Engine, settings: Settings, own_hub: HubEmulator
) -> None:
    secret = "hf_" + "s3cr3t" * 6
    s = hub_settings(settings, own_hub, hub_token=secret)
    gone = store_revision(store, own_hub, "nobody/deleted", "b" * 40)
    collect(s, store, [gone])
    # The Hub tells an authenticated caller 404 for a missing repo, an anonymous one 401.
    assert [r["status"] for r in own_hub.request_log] == [404]
    status, reason, message = rows_of(store, "SELECT status, reason, message FROM hub_dataset")[0]
    assert (status, reason) == ("failed", Reason.NOT_FOUND)
    dump = rows_of(store, "SELECT row_to_json(d)::text FROM hub_dataset d")[0][0]
    assert secret not in dump and secret not in message


def test_gated_dataset_is_skipped_without_a_request(
    store: Engine, settings: Settings, own_hub: HubEmulator
) -> None:
    gated = next(e["id"] for e in own_index() if e.get("gated"))
    s = hub_settings(settings, own_hub)
    found = discover(s, store, ids=[gated])
    before = len(own_hub.request_log)
    summary = collect(s, store, found.new_ids)
    assert summary.counts[("skipped", Reason.GATED)] == 1
    assert len(own_hub.request_log) == before


@pytest.mark.parametrize("languages", [[], ["de"]])
def test_allowed_languages_are_a_setting(
    store: Engine, settings: Settings, own_hub: HubEmulator, languages: list[str]
) -> None:
    s = hub_settings(settings, own_hub, languages=languages)
    collect(s, store, discover(s, store, ids=["polyglot-data/themen-saetze-de"]).new_ids)
    assert by_dataset(store)["polyglot-data/themen-saetze-de"][0] == "collected"
