"""One retry policy for every remote call: the Hub, the Dataset Viewer and the LLM endpoint.

A client classifies each failed attempt into a :class:`Failure` (transient or permanent, with a
reason code and, when the server said so, how long to wait). :func:`call_with_retries` runs the
attempts with tenacity: transient failures are retried with capped exponential backoff and
jitter, never sooner than the server asked (``Retry-After``, ``retry-after-ms``, the IETF
``RateLimit`` header the Hub sends, OpenAI's ``x-ratelimit-reset-*``); permanent ones, and a
transient one once the attempts or the longest acceptable wait are used up, are raised as they
are, with the number of attempts made.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

import tenacity
from huggingface_hub.utils import parse_ratelimit_headers

T = TypeVar("T")

# One generator for every call's jitter: seeding a new one per call costs an os.urandom read.
_RNG = random.Random()


class Failure(Exception):
    """One failed attempt, classified by the client that made it.

    ``transient``: another attempt (now or in a later run) may succeed. ``wait_s``: how long the
    server asked us to wait before the next attempt (None when it did not say).
    """

    def __init__(
        self,
        message: str,
        *,
        reason: str,
        transient: bool,
        wait_s: float | None = None,
        status: int | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.transient = transient
        self.wait_s = wait_s
        self.status = status
        self.code = code
        self.attempts = 1

    def __str__(self) -> str:
        if self.attempts > 1:
            return f"{self.message} (after {self.attempts} attempts)"
        return self.message


@dataclass(frozen=True)
class RetryPolicy:
    """How many attempts, and how long to wait between them.

    ``attempts`` counts the first one. The backoff doubles from ``backoff_s`` up to
    ``backoff_max_s`` with jitter (a random 50-100% of it). A server's own wait is honoured even
    when longer than ``backoff_max_s``, up to ``max_server_wait_s``; asked to wait longer, the
    client gives up at once and the work stays retryable for a later run.
    """

    attempts: int
    backoff_s: float = 1.0
    backoff_max_s: float = 60.0
    max_server_wait_s: float = 330.0  # a Hub quota window (5 minutes) and some slack

    def delay(self, attempt: int, server_wait: float | None, rng: random.Random) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        exponential = min(self.backoff_max_s, self.backoff_s * 2 ** (attempt - 1))
        wait = exponential * (0.5 + 0.5 * rng.random())
        return wait if server_wait is None else server_wait


async def call_with_retries(
    attempt: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    classify: Callable[[BaseException], Failure | None],
    sleep: Callable[[float], Awaitable[None]] | None = None,
    on_retry: Callable[[Failure, float], None] | None = None,
    rng: random.Random | None = None,
) -> T:
    """Run ``attempt`` until it succeeds or fails for good.

    ``classify`` turns an exception into a :class:`Failure`, or None for exceptions that are bugs
    (raised at once, untouched). Raises the last :class:`Failure`, its ``attempts`` set.
    """
    rng = rng or _RNG
    count = 0

    async def once() -> T:
        nonlocal count
        count += 1
        try:
            return await attempt()
        except Failure as failure:
            failure.attempts = count
            raise
        except Exception as exc:
            found = classify(exc)
            if found is None:
                raise
            found.attempts = count
            raise found from exc

    def wait(state: tenacity.RetryCallState) -> float:
        failure = _failure_of(state)
        return policy.delay(state.attempt_number, failure.wait_s if failure else None, rng)

    def retryable(state: tenacity.RetryCallState) -> bool:
        failure = _failure_of(state)
        if failure is None or not failure.transient:
            return False
        return failure.wait_s is None or failure.wait_s <= policy.max_server_wait_s

    def before_sleep(state: tenacity.RetryCallState) -> None:
        failure = _failure_of(state)
        if on_retry is not None and failure is not None and state.next_action is not None:
            on_retry(failure, state.next_action.sleep)

    retrying = tenacity.AsyncRetrying(
        sleep=sleep or asyncio.sleep,
        stop=tenacity.stop_after_attempt(max(1, policy.attempts)),
        wait=wait,
        retry=retryable,
        before_sleep=before_sleep,
        reraise=True,
    )
    return await retrying(once)


def _failure_of(state: tenacity.RetryCallState) -> Failure | None:
    if state.outcome is None or not state.outcome.failed:
        return None
    exc = state.outcome.exception()
    return exc if isinstance(exc, Failure) else None


# --- what servers say about waiting -----------------------------------------------------------


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta seconds or an HTTP date); None when
    the header is absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


@dataclass(frozen=True)
class RateLimit:
    """Where a client stands in the server's quota, from the IETF ``RateLimit`` headers the Hub
    sends (``RateLimit: "api";r=0;t=55``, ``RateLimit-Policy: "fixed window";"api";q=500;w=300``).

    ``remaining`` requests are left in the current window of ``bucket``, which resets in
    ``reset_s`` seconds; ``quota`` requests are allowed per ``window_s`` seconds.
    """

    bucket: str
    remaining: int
    reset_s: float
    quota: int | None = None
    window_s: float | None = None

    @property
    def exhausted(self) -> bool:
        """No request is left in this window."""
        return self.remaining <= 0


def rate_limit(headers: Mapping[str, str]) -> RateLimit | None:
    """The ``RateLimit`` headers of an answer (parsed by huggingface_hub's own parser); None
    when the server sent none."""
    info = parse_ratelimit_headers(headers)
    if info is None:
        return None
    return RateLimit(
        bucket=info.resource_type,
        remaining=info.remaining,
        reset_s=float(info.reset_in_seconds),
        quota=info.limit,
        window_s=float(info.window_seconds) if info.window_seconds is not None else None,
    )


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


def duration_seconds(value: str | None) -> float | None:
    """OpenAI's reset durations (``20ms``, ``1s``, ``6m0s``, ``1h2m3.5s``) in seconds."""
    if not value:
        return None
    parts = _DURATION.findall(value.strip())
    if not parts:
        return _number(value)
    unit = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    return sum(float(n) * unit[u] for n, u in parts)


def server_wait_seconds(headers: Mapping[str, str]) -> float | None:
    """How long the server asked us to wait before the next request, from any of the headers
    servers use for it; None when none says so."""
    ms = _number(_get(headers, "retry-after-ms"))
    if ms is not None:
        return max(0.0, ms / 1000)
    after = retry_after_seconds(_get(headers, "retry-after"))
    if after is not None:
        return after
    limit = rate_limit(headers)
    if limit is not None and limit.exhausted:
        return limit.reset_s
    waits = [
        duration_seconds(_get(headers, f"x-ratelimit-reset-{kind}"))
        for kind in ("requests", "tokens")
        if _number(_get(headers, f"x-ratelimit-remaining-{kind}")) == 0
    ]
    known = [w for w in waits if w is not None]
    return max(known) if known else None


def _get(headers: Mapping[str, str], name: str) -> str | None:
    """A header by name, whatever its case (httpx headers ignore case already, dicts do not)."""
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    return value
