"""The LLM client's retry policy, against real HTTP endpoints on loopback.

Waits are recorded by an injected ``sleep`` instead of being slept, so the policy is checked
exactly and the tests take no time.
"""

from __future__ import annotations

import asyncio
import random

import pytest
from pydantic import SecretStr

from dynosaur.generate.client import CallFailed, LLMClient
from dynosaur.generate.jobs import request_parameters
from dynosaur.reasons import Reason
from dynosaur.settings import Settings
from tests.generate.conftest import completion, error, fast_settings

MESSAGES = [{"role": "user", "content": "hello"}]


class Waits:
    """Records the waits asked for, returning at once (not a list subclass: an empty list is
    falsy, and ``sleep or asyncio.sleep`` would pick the real sleep)."""

    def __init__(self) -> None:
        self.seen: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seen.append(seconds)

    def __len__(self) -> int:
        return len(self.seen)

    def __bool__(self) -> bool:
        return True

    def __iter__(self):
        return iter(self.seen)

    def __eq__(self, other: object) -> bool:
        return self.seen == other


def _complete(settings: Settings, waits: Waits, **parameters: object):
    async def run():
        async with LLMClient(settings, sleep=waits, rng=random.Random(1)) as client:
            return await client.complete("gpt-4o-mini", MESSAGES, {"max_tokens": 16, **parameters})

    return asyncio.run(run())


def test_server_errors_are_retried_until_an_answer_comes(settings: Settings, scripted) -> None:
    server = scripted([(500, error(500), {}), (503, error(503), {}), (200, completion("[]"), {})])
    waits = Waits()
    answer = _complete(fast_settings(settings, server.base_url), waits)
    assert answer.text == "[]" and answer.attempts == 3
    assert answer.prompt_tokens == 100 and answer.completion_tokens == 20
    assert len(server.requests) == 3 and len(waits) == 2


def test_retry_after_is_honoured_as_the_shortest_wait(settings: Settings, scripted) -> None:
    server = scripted([(429, error(429), {"retry-after": "3"}), (200, completion("[]"), {})])
    waits = Waits()
    _complete(fast_settings(settings, server.base_url, llm_backoff_max_s=60), waits)
    assert waits == [3.0]


def test_retry_after_ms_is_preferred_to_seconds(settings: Settings, scripted) -> None:
    headers = {"retry-after-ms": "1500", "retry-after": "9"}
    server = scripted([(429, error(429), headers), (200, completion("[]"), {})])
    waits = Waits()
    _complete(fast_settings(settings, server.base_url, llm_backoff_max_s=60), waits)
    assert waits == [1.5]


def test_backoff_grows_exponentially_with_jitter_and_is_capped(settings: Settings, scripted):
    server = scripted([(500, error(500), {})] * 6 + [(200, completion("[]"), {})])
    waits = Waits()
    tuned = fast_settings(settings, server.base_url, llm_backoff_s=1.0, llm_backoff_max_s=10.0)
    _complete(tuned, waits)
    bounds = [(0.5, 1), (1, 2), (2, 4), (4, 8), (5, 10), (5, 10)]
    assert all(low <= wait <= high for wait, (low, high) in zip(waits, bounds, strict=True))


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (401, Reason.LLM_AUTH_ERROR),
        (403, Reason.LLM_AUTH_ERROR),
        (400, Reason.LLM_BAD_REQUEST),
        (404, Reason.LLM_BAD_REQUEST),
    ],
)
def test_auth_errors_and_bad_requests_are_not_retried(
    settings: Settings, scripted, status: int, reason: Reason
) -> None:
    server = scripted([(status, error(status, "nope"), {}), (200, completion("[]"), {})])
    waits = Waits()
    with pytest.raises(CallFailed) as failed:
        _complete(fast_settings(settings, server.base_url), waits)
    assert failed.value.reason == reason and failed.value.attempts == 1
    assert len(server.requests) == 1 and waits == []


def test_retries_stop_after_the_configured_number(settings: Settings, scripted) -> None:
    server = scripted([(502, error(502), {})])
    with pytest.raises(CallFailed) as failed:
        _complete(fast_settings(settings, server.base_url, llm_max_retries=2), Waits())
    assert failed.value.reason == Reason.LLM_SERVER_ERROR
    assert failed.value.attempts == 3 and len(server.requests) == 3


def test_a_hanging_endpoint_times_out_and_is_retried(settings: Settings, emulator) -> None:
    llm = emulator(rate_hang=1.0, hang_seconds=60)
    with pytest.raises(CallFailed) as failed:
        _complete(
            fast_settings(settings, llm.base_url, llm_timeout_s=0.3, llm_max_retries=1), Waits()
        )
    assert failed.value.reason == Reason.LLM_TIMEOUT and failed.value.attempts == 2


def test_a_body_that_is_not_a_completion_is_retried(settings: Settings, scripted) -> None:
    headers = {"content-type": "application/json"}
    server = scripted(
        [(200, "{not json", headers), (200, {"choices": []}, {}), (200, completion("[]"), {})]
    )
    answer = _complete(fast_settings(settings, server.base_url), Waits())
    assert answer.attempts == 3


def test_an_unreachable_endpoint_is_a_connection_error(settings: Settings) -> None:
    tuned = fast_settings(settings, "http://127.0.0.1:9/v1", llm_max_retries=1)
    with pytest.raises(CallFailed) as failed:
        _complete(tuned, Waits())
    assert failed.value.reason == Reason.LLM_CONNECTION_ERROR


def test_the_key_is_sent_as_a_bearer_token_and_a_placeholder_without_one(
    settings: Settings, scripted
) -> None:
    server = scripted([(200, completion("[]"), {})])
    _complete(fast_settings(settings, server.base_url, llm_api_key=SecretStr("sk-abc")), Waits())
    _complete(fast_settings(settings, server.base_url, llm_api_key=None), Waits())
    sent = [r["headers"]["authorization"] for r in server.requests]
    assert sent[0] == "Bearer sk-abc" and "sk-" not in sent[1]


def test_parameters_reach_the_endpoint(settings: Settings, scripted) -> None:
    server = scripted([(200, completion("[]"), {})])
    _complete(fast_settings(settings, server.base_url), Waits(), temperature=0.0)
    body = server.requests[0]["body"]
    assert body["model"] == "gpt-4o-mini" and body["max_tokens"] == 16
    assert body["temperature"] == 0.0 and body["messages"] == MESSAGES


def test_insufficient_quota_is_permanent_and_stops_the_run(settings: Settings, scripted) -> None:
    body = {
        "error": {
            "message": "You exceeded your current quota",
            "type": "insufficient_quota",
            "param": None,
            "code": "insufficient_quota",
        }
    }
    server = scripted([(429, body, {"retry-after": "1"}), (200, completion("[]"), {})])
    waits = Waits()
    with pytest.raises(CallFailed) as failed:
        _complete(fast_settings(settings, server.base_url), waits)
    assert failed.value.reason == Reason.LLM_QUOTA_EXHAUSTED and failed.value.stops_run
    assert not failed.value.transient and len(server.requests) == 1 and waits == []


def test_x_should_retry_overrides_the_status(settings: Settings, scripted) -> None:
    retry = scripted([(400, error(400), {"x-should-retry": "true"}), (200, completion("[]"), {})])
    assert _complete(fast_settings(settings, retry.base_url), Waits()).attempts == 2
    final = scripted([(503, error(503), {"x-should-retry": "false"})])
    with pytest.raises(CallFailed) as failed:
        _complete(fast_settings(settings, final.base_url), Waits())
    assert failed.value.reason == Reason.LLM_SERVER_ERROR and failed.value.attempts == 1
    assert not failed.value.transient


def test_a_server_wait_beyond_the_longest_backoff_is_not_waited_for(
    settings: Settings, scripted
) -> None:
    server = scripted([(429, error(429), {"retry-after": "30"}), (200, completion("[]"), {})])
    waits = Waits()
    with pytest.raises(CallFailed) as failed:
        _complete(fast_settings(settings, server.base_url, llm_backoff_max_s=5), waits)
    assert failed.value.reason == Reason.LLM_RATE_LIMITED and failed.value.transient
    assert waits == [] and len(server.requests) == 1


def test_a_used_up_quota_pauses_the_next_attempt_until_its_reset(
    settings: Settings, scripted
) -> None:
    used_up = {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "2s"}
    server = scripted([(200, completion("[]"), used_up), (200, completion("[]"), {})])
    waits = Waits()

    async def run() -> None:
        tuned = fast_settings(settings, server.base_url, llm_backoff_max_s=60)
        async with LLMClient(tuned, sleep=waits, rng=random.Random(1)) as client:
            await client.complete("gpt-4o-mini", MESSAGES, {"max_tokens": 16})
            await client.complete("gpt-4o-mini", MESSAGES, {"max_tokens": 16})

    asyncio.run(run())
    assert len(waits) == 1 and 1.0 < waits.seen[0] <= 2.0


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("gpt-4o-mini", {"max_tokens": 512, "temperature": 0.0}),
        ("o3-mini", {"max_completion_tokens": 4096}),
        ("gpt-5.1", {"max_completion_tokens": 4096}),
        ("openai/gpt-5-nano-2025-08-07", {"max_completion_tokens": 4096}),
        ("gpt-50", {"max_tokens": 512, "temperature": 0.0}),
    ],
)
def test_request_parameters_follow_the_model_family(
    settings: Settings, model: str, expected: dict
) -> None:
    assert request_parameters(settings, model) == expected


def test_request_parameters_are_configurable(settings: Settings) -> None:
    tuned = settings.model_copy(
        update={"llm_token_parameter": "max_completion_tokens", "llm_reasoning_effort": "low"}
    )
    assert request_parameters(tuned, "gpt-4.1") == {"max_completion_tokens": 512, "temperature": 0}
    assert request_parameters(tuned, "o4-mini") == {
        "max_completion_tokens": 4096,
        "reasoning_effort": "low",
    }
