"""The Hub client against the emulator: retries, Retry-After, bounded concurrency, errors."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from dynosaur.emulators.hub import HubEmulator
from dynosaur.errors import HubRequestError
from dynosaur.hub.client import HubClient
from dynosaur.reasons import Reason
from dynosaur.retry import retry_after_seconds
from dynosaur.settings import Settings
from tests.emulators.conftest import AFTER_ALL, SQUAD
from tests.hub.conftest import hub_settings


async def splits(settings: Settings, dataset_id: str = SQUAD) -> dict:
    async with HubClient(settings) as client:
        return await client.viewer("splits", dataset_id)


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds("-1") == 0.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a past date: now
    # A date a day ahead: however loaded the machine, far fewer than an hour passes meanwhile.
    day = 24 * 3600
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=day), usegmt=True)
    assert day - 3600 < (retry_after_seconds(later) or 0) <= day


def test_429_is_retried_until_it_passes(settings: Settings) -> None:
    with HubEmulator(now=AFTER_ALL, rate_429=0.6, retry_after=0, seed=0) as hub:
        answer = asyncio.run(splits(hub_settings(settings, hub, hub_max_retries=20)))
        statuses = [r["status"] for r in hub.request_log]
    assert answer["splits"]
    assert statuses == [429, 429, 429, 200]  # the seeded draws of this request


def test_retries_run_out_with_rate_limited_or_hub_error(settings: Settings) -> None:
    with HubEmulator(now=AFTER_ALL, rate_429=1.0, retry_after=0) as hub:
        with pytest.raises(HubRequestError) as limited:
            asyncio.run(splits(hub_settings(settings, hub, hub_max_retries=2)))
        assert len(hub.requests_to("/splits")) == 3
    assert (limited.value.reason, limited.value.transient) == (Reason.RATE_LIMITED, True)

    with HubEmulator(now=AFTER_ALL, rate_5xx=1.0) as hub:
        with pytest.raises(HubRequestError) as failing:
            asyncio.run(splits(hub_settings(settings, hub, hub_max_retries=3)))
        assert len(hub.requests_to("/splits")) == 4
    assert (failing.value.reason, failing.value.transient) == (Reason.HUB_ERROR, True)


def test_a_retry_after_longer_than_we_wait_gives_up_at_once(settings: Settings) -> None:
    with HubEmulator(now=AFTER_ALL, rate_429=1.0, retry_after=3600) as hub:
        with pytest.raises(HubRequestError) as error:
            asyncio.run(splits(hub_settings(settings, hub, hub_backoff_max_s=60)))
        assert len(hub.requests_to("/splits")) == 1
    assert error.value.reason == Reason.RATE_LIMITED


def test_viewer_not_ready_is_not_retried(settings: Settings) -> None:
    with HubEmulator(now=AFTER_ALL, viewer_not_ready=[SQUAD]) as hub:
        with pytest.raises(HubRequestError) as error:
            asyncio.run(splits(hub_settings(settings, hub)))
        assert len(hub.requests_to("/splits")) == 1
    assert error.value.reason == Reason.VIEWER_NOT_READY


def test_missing_dataset_and_config_are_permanent_errors(settings: Settings) -> None:
    with HubEmulator(now=AFTER_ALL) as hub:
        s = hub_settings(settings, hub)
        with pytest.raises(HubRequestError) as missing:
            asyncio.run(splits(s, "nobody/nothing"))
        assert missing.value.reason == Reason.GATED  # anonymous: the viewer cannot tell
        with pytest.raises(HubRequestError) as card:
            asyncio.run(_card(s, "nobody/nothing"))
        assert (card.value.reason, card.value.transient) == (Reason.NOT_FOUND, False)


async def _card(settings: Settings, dataset_id: str) -> tuple[bytes, bool] | None:
    async with HubClient(settings) as client:
        return await client.card(dataset_id, "main")


def test_requests_in_flight_reach_but_never_exceed_the_concurrency(settings: Settings) -> None:
    async def run(s: Settings) -> None:
        async with HubClient(s) as client:
            await asyncio.gather(*(client.viewer("splits", SQUAD) for _ in range(24)))

    with HubEmulator(now=AFTER_ALL) as hub:
        # Measured at the server: the first requests are held until 3 are in flight at once,
        # so the client's use of its 3 slots shows whatever the machine's speed.
        hub.hold(3)
        asyncio.run(run(hub_settings(settings, hub, hub_concurrency=3)))
        assert len(hub.requests_to("/splits")) == 24
        assert hub.peak_in_flight == 3
