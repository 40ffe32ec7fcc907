"""The one retry policy: what is retried, how long it waits, what the servers' headers say."""

from __future__ import annotations

import asyncio
import random

import pytest

from dynosaur.retry import (
    Failure,
    RetryPolicy,
    call_with_retries,
    duration_seconds,
    rate_limit,
    retry_after_seconds,
    server_wait_seconds,
)


class Flaky:
    """Fails with the given exceptions in turn, then answers ``"ok"``."""

    def __init__(self, *failures: BaseException) -> None:
        self.failures = list(failures)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "ok"


def _run(flaky: Flaky, policy: RetryPolicy, classify=lambda exc: None) -> tuple[object, list]:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    async def main() -> object:
        return await call_with_retries(
            flaky, policy, classify=classify, sleep=sleep, rng=random.Random(1)
        )

    try:
        return asyncio.run(main()), waits
    except Exception as exc:
        return exc, waits


def transient(wait: float | None = None) -> Failure:
    return Failure("HTTP 503", reason="hub_error", transient=True, wait_s=wait)


def test_transient_failures_are_retried_until_success():
    flaky = Flaky(transient(), transient())
    result, waits = _run(flaky, RetryPolicy(attempts=5, backoff_s=1, backoff_max_s=60))
    assert result == "ok" and flaky.calls == 3
    # jittered exponential: 50-100% of 1 s, then of 2 s
    assert 0.5 <= waits[0] <= 1.0 and 1.0 <= waits[1] <= 2.0


def test_permanent_failure_is_raised_at_once_with_its_attempt_count():
    flaky = Flaky(Failure("HTTP 401", reason="gated", transient=False))
    result, waits = _run(flaky, RetryPolicy(attempts=5))
    assert isinstance(result, Failure) and result.reason == "gated"
    assert flaky.calls == 1 and waits == [] and result.attempts == 1


def test_gives_up_after_the_attempts_and_says_how_many():
    flaky = Flaky(*(transient() for _ in range(10)))
    result, waits = _run(flaky, RetryPolicy(attempts=3))
    assert isinstance(result, Failure) and result.attempts == 3 and flaky.calls == 3
    assert len(waits) == 2 and "after 3 attempts" in str(result)


def test_server_wait_is_honoured_even_beyond_the_backoff_cap():
    flaky = Flaky(transient(wait=55.0))
    result, waits = _run(flaky, RetryPolicy(attempts=3, backoff_max_s=10))
    assert result == "ok" and waits == [55.0]


def test_a_wait_longer_than_acceptable_is_not_slept_through():
    flaky = Flaky(transient(wait=3600.0))
    result, waits = _run(flaky, RetryPolicy(attempts=3, max_server_wait_s=330))
    assert isinstance(result, Failure) and result.transient and waits == []


def test_classify_turns_exceptions_into_failures_and_leaves_bugs_alone():
    def classify(exc: BaseException) -> Failure | None:
        if isinstance(exc, ConnectionError):
            return Failure("refused", reason="llm_connection_error", transient=True)
        return None

    flaky = Flaky(ConnectionError("refused"))
    result, _ = _run(flaky, RetryPolicy(attempts=2), classify)
    assert result == "ok"
    bug = Flaky(KeyError("oops"))
    result, waits = _run(bug, RetryPolicy(attempts=5), classify)
    assert isinstance(result, KeyError) and bug.calls == 1 and waits == []


def test_ratelimit_headers_of_the_hub():
    headers = {
        "RateLimit": '"api";r=0;t=55',
        "RateLimit-Policy": '"fixed window";"api";q=500;w=300',
    }
    limit = rate_limit(headers)
    assert limit is not None and limit.exhausted
    assert (limit.bucket, limit.reset_s, limit.quota, limit.window_s) == ("api", 55, 500, 300)
    assert server_wait_seconds(headers) == 55
    # Requests left in the window: no wait asked.
    assert server_wait_seconds({"ratelimit": '"api";r=12;t=55'}) is None


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after-ms": "250"}, 0.25),
        ({"Retry-After": "7"}, 7.0),
        ({"retry-after": "soon"}, None),
        ({"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "6m0s"}, 360.0),
        ({"x-ratelimit-remaining-requests": "5", "x-ratelimit-reset-requests": "6m0s"}, None),
        ({}, None),
    ],
)
def test_server_wait_from_every_header_servers_use(headers, expected):
    assert server_wait_seconds(headers) == expected


def test_durations_and_dates():
    assert duration_seconds("20ms") == pytest.approx(0.02)
    assert duration_seconds("1h2m3.5s") == pytest.approx(3723.5)
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
