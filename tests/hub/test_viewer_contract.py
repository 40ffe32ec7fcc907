"""Collect against the emulator speaking the real viewer and Hub contract: permanent viewer codes
are skipped with a reason per family (never retried, never deferred), transient ones deferred,
pending configs and stale revisions revisited, truncated cells noted; the Hub's quotas paced and
their 429s waited out to the window's reset; a token echoed by a server never stored or logged."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy.engine import Engine

from dynosaur.emulators.hub import HubEmulator
from dynosaur.hub import collect, discover
from dynosaur.hub.client import HubClient
from dynosaur.reasons import Reason
from dynosaur.redact import RedactingFilter
from dynosaur.settings import Settings
from dynosaur.store.datasets import collect_queue
from tests.emulators.conftest import AFTER_ALL
from tests.hub.conftest import SnapshotWriter, hub_settings, rows_of

DATASET = "contract/qa-pairs"


@pytest.fixture
def snapshot(snapshot_writer: SnapshotWriter) -> Path:
    snapshot_writer.add(DATASET)
    snapshot_writer.add(
        "contract/no-viewer", card="---\nlicense: mit\nlanguage: [en]\nviewer: false\n---\n# x\n"
    )
    return snapshot_writer.write()


def run(store: Engine, settings: Settings, hub: HubEmulator, **overrides: Any) -> None:
    """Discover the snapshot's datasets (first run only) and collect what is due."""
    s = hub_settings(settings, hub, **overrides)
    if not rows_of(store, "SELECT id FROM hub_dataset"):
        discover(s, store, ids=[DATASET, "contract/no-viewer"])
    collect(s, store, collect_queue(store))


def outcome(store: Engine, dataset_id: str = DATASET) -> tuple[Any, ...]:
    [row] = rows_of(
        store,
        "SELECT status, reason, message, attempts FROM hub_dataset WHERE dataset_id = :d",
        d=dataset_id,
    )
    return tuple(row)


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("NotSupportedDisabledViewerError", Reason.VIEWER_DISABLED),
        ("DatasetWithScriptNotSupportedError", Reason.VIEWER_SCRIPT),
        ("DatasetInBlockListError", Reason.VIEWER_BLOCKED),
        ("NotSupportedTagNFAAError", Reason.VIEWER_BLOCKED),
        ("DatasetWithTooManyConfigsError", Reason.VIEWER_TOO_LARGE),
        ("NoSupportedFeaturesError", Reason.VIEWER_UNSUPPORTED_FEATURES),
        ("EmptyDatasetError", Reason.VIEWER_DATASET_ERROR),
    ],
)
def test_permanent_viewer_codes_are_skipped_at_once_with_their_family(
    store: Engine, settings: Settings, snapshot: Path, code: str, reason: Reason
) -> None:
    with HubEmulator(snapshot, now=AFTER_ALL, viewer_errors=[f"{DATASET}={code}"]) as hub:
        run(store, settings, hub)
        status, stored, message, _ = outcome(store)
        assert (status, stored) == ("skipped", reason)
        assert code in message
        assert len(hub.requests_to("/splits")) == 2  # one per dataset: no retry
        assert collect_queue(store) == []  # and no later run takes it again


def test_a_viewer_false_card_is_answered_501_and_skipped(
    store: Engine, settings: Settings, snapshot: Path
) -> None:
    with HubEmulator(snapshot, now=AFTER_ALL) as hub:
        run(store, settings, hub)
        statuses = [r["status"] for r in hub.requests_to("/splits")]
    assert outcome(store, "contract/no-viewer")[:2] == ("skipped", Reason.VIEWER_DISABLED)
    assert outcome(store)[:2] == ("collected", None)
    assert sorted(statuses) == [200, 501]


@pytest.mark.parametrize(
    ("code", "reason", "requests"),
    [
        ("ResponseNotReady", Reason.VIEWER_NOT_READY, 1),
        ("PreviousStepStillProcessingError", Reason.VIEWER_NOT_READY, 1),
        ("UnexpectedError", Reason.HUB_ERROR, 3),
        ("text", Reason.HUB_ERROR, 3),
    ],
)
def test_transient_viewer_answers_are_deferred(
    store: Engine, settings: Settings, snapshot: Path, code: str, reason: Reason, requests: int
) -> None:
    with HubEmulator(snapshot, now=AFTER_ALL, viewer_transient=[f"{DATASET}={code}"]) as hub:
        run(store, settings, hub, hub_max_retries=2)
        splits = [r for r in hub.requests_to("/splits") if r["query"]["dataset"] == DATASET]
        assert outcome(store)[:2] == ("deferred", reason)
        assert len(splits) == requests  # not ready: no retry now; a server error: retried
        hub.configure(viewer_transient=())
        run(store, settings, hub)
    assert outcome(store)[:2] == ("collected", None)


def test_pending_configs_defer_the_dataset_until_the_viewer_computed_them(
    store: Engine, settings: Settings, snapshot: Path
) -> None:
    with HubEmulator(snapshot, now=AFTER_ALL, viewer_pending=[f"{DATASET}=default"]) as hub:
        run(store, settings, hub)
        status, reason, message, attempts = outcome(store)
        assert (status, reason, attempts) == ("deferred", Reason.VIEWER_NOT_READY, 1)
        assert "still computing" in message
        hub.configure(viewer_pending=())
        run(store, settings, hub)
    assert outcome(store)[:2] == ("collected", None)
    [config] = rows_of(store, "SELECT config_name, status FROM dataset_config")
    assert tuple(config) == ("default", "collected")


def test_configs_still_pending_at_the_last_attempt_are_skipped(
    store: Engine, settings: Settings, snapshot: Path
) -> None:
    with HubEmulator(snapshot, now=AFTER_ALL, viewer_pending=[f"{DATASET}=default"]) as hub:
        run(store, settings, hub, viewer_max_attempts=1)
    assert outcome(store)[:2] == ("skipped", Reason.NO_USABLE_CONFIG)
    [config] = rows_of(store, "SELECT status, reason FROM dataset_config")
    assert tuple(config) == ("skipped", Reason.VIEWER_NOT_READY)


def test_an_answer_for_an_older_revision_defers_the_dataset(
    store: Engine, settings: Settings, snapshot: Path
) -> None:
    with HubEmulator(snapshot, now=AFTER_ALL, viewer_stale=[DATASET]) as hub:
        run(store, settings, hub)
        assert outcome(store)[:2] == ("deferred", Reason.VIEWER_STALE_REVISION)
        assert not rows_of(store, "SELECT id FROM dataset_config WHERE status = 'collected'")
        hub.configure(viewer_stale=())
        run(store, settings, hub)
    assert outcome(store)[:2] == ("collected", None)


def test_truncated_cells_are_noted(
    store: Engine, settings: Settings, snapshot_writer: SnapshotWriter
) -> None:
    long = [{"question": "q" * 50, "answer": "a"} for _ in range(3)]
    snapshot_writer.add(DATASET, rows=long)
    snapshot_writer.add("contract/no-viewer")
    with HubEmulator(snapshot_writer.write(), now=AFTER_ALL, truncate_cells=10) as hub:
        run(store, settings, hub)
    [config] = rows_of(
        store,
        "SELECT c.notes, c.sample_rows FROM dataset_config c JOIN hub_dataset d "
        "ON d.id = c.hub_dataset_id WHERE d.dataset_id = :d",
        d=DATASET,
    )
    assert Reason.ROW_VALUES_TRUNCATED in config[0]
    assert config[1][0]["question"] == "q" * 10


# --- the Hub's quotas ---------------------------------------------------------------------


def test_the_emulator_counts_each_bucket_in_fixed_windows_per_caller() -> None:
    import httpx

    with (
        HubEmulator(now=AFTER_ALL, quota_api=3, token_quota_api=5) as hub,
        httpx.Client(base_url=hub.url, timeout=60) as client,
    ):
        answers = [client.get("/api/datasets", params={"limit": 1}) for _ in range(4)]
        viewer = client.get("/healthcheck")
        with_token = client.get("/api/datasets", headers={"authorization": "Bearer abcdefgh"})
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["ratelimit"].split(";")[1] for a in answers] == ["r=2", "r=1", "r=0", "r=0"]
    assert answers[3].headers["ratelimit-policy"] == '"fixed window";"api";q=3;w=300'
    assert "retry-after" not in answers[3].headers
    reset = int(answers[3].headers["ratelimit"].split(";t=")[1])
    assert 0 < reset <= 300
    assert viewer.status_code == 200 and "ratelimit" not in viewer.headers  # the viewer: no bucket
    assert with_token.status_code == 200
    assert with_token.headers["ratelimit"].startswith('"api";r=4;')  # its own, larger quota


async def _cards(settings: Settings, n: int) -> list[Any]:
    async with HubClient(settings) as client:
        return await asyncio.gather(*(client.card(DATASET, "main") for _ in range(n)))


def test_the_client_paces_itself_to_the_quota(settings: Settings, snapshot: Path) -> None:
    with HubEmulator(snapshot, now=AFTER_ALL, quota_resolvers=2, quota_window=1) as hub:
        s = hub_settings(settings, hub, hub_quota_resolvers=2, hub_quota_window_s=1)
        cards = asyncio.run(_cards(s, 6))
        log = hub.requests_to(f"/datasets/{DATASET}/resolve/main/README.md")
    assert all(card is not None for card in cards)
    assert [r["status"] for r in log] == [200] * 6  # never ran into the quota
    per_window: dict[int, int] = {}
    for entry in log:
        per_window[entry["window"]] = per_window.get(entry["window"], 0) + 1
    assert max(per_window.values()) <= 2 and len(per_window) >= 3


def test_a_429_waits_for_the_reset_the_ratelimit_header_gives(
    settings: Settings, snapshot: Path
) -> None:
    with HubEmulator(snapshot, now=AFTER_ALL, quota_resolvers=1, quota_window=1) as hub:
        # The client's own pacing off: only the server's answers tell it about the quota.
        s = hub_settings(settings, hub, hub_quota_resolvers=0, hub_max_retries=5)
        cards = asyncio.run(_cards(s, 3))
        log = hub.requests_to(f"/datasets/{DATASET}/resolve/main/README.md")
    assert all(card is not None for card in cards)
    assert [r["status"] for r in log].count(200) == 3
    refused = [r for r in log if r["status"] == 429]
    assert refused  # three at once against a quota of one
    # Each refused request came back only in a later window: it waited for the reset.
    windows_ok = sorted(r["window"] for r in log if r["status"] == 200)
    assert len(set(windows_ok)) == 3
    assert all(r["window"] < max(windows_ok) for r in refused)


# --- secrets --------------------------------------------------------------------------------


def test_a_token_echoed_by_the_server_never_reaches_the_store_or_the_logs(
    store: Engine, settings: Settings, snapshot: Path, caplog: pytest.LogCaptureFixture
) -> None:
    token = "tok-contract-4242-secret"
    with HubEmulator(
        snapshot,
        now=AFTER_ALL,
        echo_auth=True,
        viewer_transient=[f"{DATASET}=UnexpectedError"],
    ) as hub:
        s = hub_settings(settings, hub, hub_token=SecretStr(token), hub_max_retries=1)
        assert s.hub_token is not None
        # As a deployment installs it on its handlers (third-party libraries log headers too).
        caplog.handler.addFilter(RedactingFilter())
        with caplog.at_level(logging.DEBUG):
            discover(s, store, ids=[DATASET, "contract/no-viewer"])
            collect(s, store, collect_queue(store))
    messages = rows_of(store, "SELECT status, message FROM hub_dataset ORDER BY dataset_id")
    # contract/no-viewer: 501 for its viewer: false card; contract/qa-pairs: 500s, deferred.
    assert [m[0] for m in messages] == ["skipped", "deferred"]
    assert all("Authorization: Bearer ***" in m[1] for m in messages)  # echoed, then scrubbed
    stored = " ".join(str(r) for r in rows_of(store, "SELECT * FROM hub_dataset"))
    assert token not in stored
    assert token not in caplog.text
    assert "retrying" in caplog.text  # the retry was logged, scrubbed
