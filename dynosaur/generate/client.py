"""The LLM client: the official ``openai`` async SDK against any OpenAI-compatible endpoint, with
our own retry loop.

The SDK's retries are off (``max_retries=0``) because the ledger must know every attempt and
because the policy is ours: a total deadline per attempt, exponential backoff with jitter that
waits at least as long as the server's ``Retry-After``, no retry on authentication errors or bad
requests. Bounded concurrency is the caller's (a semaphore around each request). With ``aiohttp``
installed (``openai[aiohttp]``) the SDK's aiohttp transport is used: at 32 requests in flight it
costs a fraction of the default transport's CPU per request.

The API key is handed to the SDK and nowhere else: error messages are built from status codes and
scrubbed of the key, and the SDK's exception is never chained into ours.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx2
import openai

from dynosaur.errors import LLMError
from dynosaur.reasons import Reason
from dynosaur.retry import retry_after_seconds
from dynosaur.settings import Settings

log = logging.getLogger(__name__)

# Sent when no key is configured: local endpoints (vLLM, Ollama, the emulator) ignore it, and the
# SDK would otherwise read OPENAI_API_KEY behind the settings' back.
NO_KEY = "no-key-configured"
_MESSAGE_CHARS = 300


@dataclass(frozen=True)
class LLMAnswer:
    """A successful completion, with what the ledger records about it."""

    text: str
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    model: str | None
    attempts: int
    latency_ms: int


class CallFailed(LLMError):
    """A call that failed for good: its reason code, and how many attempts were made."""

    def __init__(self, message: str, *, reason: str, attempts: int) -> None:
        super().__init__(message, reason=reason)
        self.attempts = attempts


@dataclass(frozen=True)
class _Failure:
    reason: Reason
    retryable: bool
    message: str
    retry_after: float | None = None


class _Malformed(Exception):
    """The endpoint answered 200 with a body that is not a chat completion."""


class LLMClient:
    """Sends chat completions with retries; one instance per run (it owns an HTTP pool)."""

    def __init__(
        self,
        settings: Settings,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else ""
        self._secret = key
        self._sdk = openai.AsyncOpenAI(
            base_url=settings.llm_base_url,
            api_key=key or NO_KEY,
            max_retries=0,
            timeout=settings.llm_timeout_s,
            http_client=_http_client(),
        )
        self.timeout_s = settings.llm_timeout_s
        self.max_retries = settings.llm_max_retries
        self.backoff_s = settings.llm_backoff_s
        self.backoff_max_s = settings.llm_backoff_max_s
        self._sleep = sleep
        self._rng = rng or random.Random()

    async def close(self) -> None:
        """Close the HTTP pool."""
        await self._sdk.close()

    async def __aenter__(self) -> LLMClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based).

        Exponential with jitter (a random 50-100% of ``backoff * 2**(attempt-1)``), never shorter
        than the server's Retry-After, never longer than ``llm_backoff_max_s``.
        """
        exponential = min(self.backoff_max_s, self.backoff_s * 2.0 ** (attempt - 1))
        wait = exponential * (0.5 + 0.5 * self._rng.random())
        if retry_after is not None:
            wait = max(wait, retry_after)
        return min(wait, self.backoff_max_s)

    async def complete(
        self, model: str, messages: Sequence[dict[str, Any]], parameters: dict[str, Any]
    ) -> LLMAnswer:
        """One chat completion, retried as the policy allows; raises :class:`CallFailed`."""
        attempt = 0
        while True:
            attempt += 1
            started = time.monotonic()
            try:
                async with asyncio.timeout(self.timeout_s):
                    # The SDK's generic POST, answering plain JSON: the typed
                    # ``chat.completions.create`` walks its TypedDicts over every message and
                    # builds a model of the answer, milliseconds of CPU per call at fan-out.
                    completion = await self._sdk.post(
                        "/chat/completions",
                        cast_to=object,
                        body={"model": model, "messages": list(messages), **parameters},
                        options={"security": {"bearer_auth": True}},
                    )
                answer = _read(completion)
            except Exception as exc:
                failure = self._classify(exc)
                if failure is None:
                    raise
                if not failure.retryable or attempt > self.max_retries:
                    raise CallFailed(
                        f"{failure.message} (after {attempt} attempt{'s' * (attempt > 1)})",
                        reason=failure.reason,
                        attempts=attempt,
                    ) from None
                wait = self.delay(attempt, failure.retry_after)
                log.info(
                    "LLM attempt %d failed (%s); retrying in %.2fs", attempt, failure.reason, wait
                )
                await self._sleep(wait)
                continue
            text, finish_reason, prompt_tokens, completion_tokens, served_by = answer
            return LLMAnswer(
                text=text,
                finish_reason=finish_reason,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                model=served_by,
                attempts=attempt,
                latency_ms=int((time.monotonic() - started) * 1000),
            )

    def _classify(self, exc: Exception) -> _Failure | None:
        """What a failed attempt means; None for exceptions that are bugs of ours."""
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            detail = self._scrub(f"HTTP {status}: {_body_excerpt(exc)}")
            if status in (401, 403):
                return _Failure(Reason.LLM_AUTH_ERROR, False, detail)
            if status == 429:
                return _Failure(Reason.LLM_RATE_LIMITED, True, detail, _retry_after(exc))
            if status == 408:
                return _Failure(Reason.LLM_TIMEOUT, True, detail, _retry_after(exc))
            if status >= 500:
                return _Failure(Reason.LLM_SERVER_ERROR, True, detail, _retry_after(exc))
            if status == 409:  # a conflict on the server's side, worth another try
                return _Failure(Reason.LLM_ERROR, True, detail, _retry_after(exc))
            return _Failure(Reason.LLM_BAD_REQUEST, False, detail)
        if isinstance(exc, openai.APITimeoutError) and isinstance(
            exc.__cause__, httpx2.ConnectTimeout | httpx2.ConnectError
        ):
            # The aiohttp transport reports a refused connection as a connect timeout.
            return _Failure(Reason.LLM_CONNECTION_ERROR, True, "the endpoint could not be reached")
        if isinstance(exc, openai.APITimeoutError | TimeoutError):
            return _Failure(Reason.LLM_TIMEOUT, True, f"no answer within {self.timeout_s:g}s")
        if isinstance(exc, openai.APIConnectionError):
            return _Failure(Reason.LLM_CONNECTION_ERROR, True, "the endpoint could not be reached")
        if isinstance(exc, _Malformed | openai.OpenAIError | ValueError):
            # A 200 whose body is not a chat completion: the server misbehaved, try again.
            return _Failure(Reason.LLM_ERROR, True, self._scrub(f"malformed answer: {exc}"))
        return None

    def _scrub(self, text: str) -> str:
        text = text[:_MESSAGE_CHARS]
        return text.replace(self._secret, "***") if self._secret else text


def _http_client() -> openai.DefaultAsyncHttpxClient | None:
    """The SDK's aiohttp transport when ``aiohttp`` is installed (the SDK's advice for high
    concurrency: a fraction of the CPU per request), else None: the SDK's default transport."""
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        return None
    return openai.DefaultAioHttpClient()


def _read(completion: object) -> tuple[str, str | None, int | None, int | None, str | None]:
    """(text, finish_reason, prompt_tokens, completion_tokens, model) of a chat completion."""
    if not isinstance(completion, dict):
        raise _Malformed(f"the body is {type(completion).__name__}, not a chat completion")
    choices = completion.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise _Malformed("the answer has no choices")
    message = choices[0].get("message")
    if not isinstance(message, dict):
        raise _Malformed("the first choice has no message")
    text = message.get("content")
    if text is None:
        text = message.get("refusal") or ""
    if not isinstance(text, str):
        raise _Malformed("the message content is not text")
    usage = completion.get("usage")
    if not isinstance(usage, dict):
        usage = {}
    finish_reason = choices[0].get("finish_reason")
    model = completion.get("model")
    return (
        text,
        finish_reason if isinstance(finish_reason, str) else None,
        _count(usage.get("prompt_tokens")),
        _count(usage.get("completion_tokens")),
        model if isinstance(model, str) else None,
    )


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _body_excerpt(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error", body)
        message = error.get("message") if isinstance(error, dict) else error
        return str(message)[:_MESSAGE_CHARS]
    return str(exc.message)[:_MESSAGE_CHARS]


def _retry_after(exc: openai.APIStatusError) -> float | None:
    """Seconds the server asked us to wait (``retry-after-ms``, ``retry-after`` secs or date)."""
    headers = exc.response.headers
    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(0.0, float(value) / 1000)
        except ValueError:
            pass
    return retry_after_seconds(headers.get("retry-after"))
