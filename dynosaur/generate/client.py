"""The LLM client: chat completions against any OpenAI-compatible endpoint (``POST
{llm_base_url}/chat/completions``), sent with ``aiohttp`` and retried by the project's one policy
(:mod:`dynosaur.retry`).

It speaks the wire protocol itself rather than through the ``openai`` SDK: the SDK's typed call
costs several times the CPU of the request itself at fan-out (building and checking the typed
request, its response model) and its import alone takes about half a second of every run's start.
What it sends is what the SDK sends (the JSON body, ``Authorization: Bearer``); errors are read
from status codes, headers and the OpenAI-style error body as the SDK reads them.

Every failed attempt is classified:

- transient (another attempt, now or in a later run, may succeed): connection errors, timeouts,
  HTTP 408/409/5xx, 429 rate limits, a 200 whose body is not a chat completion. Retried with
  capped exponential backoff and jitter, never sooner than the server asked (``retry-after-ms``,
  ``Retry-After``, ``x-ratelimit-reset-*`` when a ``x-ratelimit-remaining-*`` is 0); a server
  that asks for more than ``llm_backoff_max_s`` is not waited for: the call fails at once, still
  transient, and the step defers its work to a later run.
- permanent: 401/403 (the key), 429 ``insufficient_quota`` (the account; both stop the run),
  other 4xx (the request: bad parameters, context length).

``x-should-retry`` overrides the status's class when the server sends it. ``x-ratelimit-*`` of
successful answers are read too: when a quota is used up, the client waits for its reset before
the next attempt of any call (one pause shared by the run's calls).

One instance per run: it owns one HTTP session (one connection pool, opened on the first call).
The API key goes into the ``Authorization`` header and nowhere else: messages are built from
status codes and error bodies and scrubbed (:func:`dynosaur.redact.redact`, the key included), and
the transport's exception is never chained into ours.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from dynosaur import __version__, redact
from dynosaur.errors import LLMError
from dynosaur.reasons import Reason
from dynosaur.retry import Failure, RetryPolicy, call_with_retries, server_wait_seconds
from dynosaur.settings import Settings

log = logging.getLogger(__name__)

# Sent when no key is configured: local endpoints (vLLM, Ollama, the emulator) ignore it, and the
# SDK would otherwise read OPENAI_API_KEY behind the settings' back.
NO_KEY = "no-key-configured"
_MESSAGE_CHARS = 300

# Failures that stop the whole run: nothing another call could do differently.
STOPPING = frozenset({Reason.LLM_AUTH_ERROR.value, Reason.LLM_QUOTA_EXHAUSTED.value})


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
    """A call that failed for good in this run: its reason code, the attempts made, and whether
    the failure was transient (the work stays retryable for a later run)."""

    def __init__(self, message: str, *, reason: str, attempts: int, transient: bool) -> None:
        super().__init__(message, reason=reason)
        self.attempts = attempts
        self.transient = transient

    @property
    def stops_run(self) -> bool:
        """A rejected key or an exhausted quota: no call of this run can succeed."""
        return self.reason in STOPPING


class CallStopped(Exception):
    """The run stopped (a rejected key, no quota) before this call's next attempt was sent."""


class _Malformed(Exception):
    """The endpoint answered 200 with a body that is not a chat completion."""


class _StatusError(Exception):
    """The endpoint answered an HTTP error: its status, headers (names in lower case) and body
    (parsed JSON, else the text)."""

    def __init__(self, status: int, headers: dict[str, str], body: object) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.headers = headers
        self.body = body


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
        self._url = settings.llm_base_url.rstrip("/") + "/chat/completions"
        self._headers = {
            "Authorization": f"Bearer {key or NO_KEY}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": f"dynosaur/{__version__}",
        }
        self._pool_size = max(100, settings.llm_concurrency)
        self._session: aiohttp.ClientSession | None = None
        self.timeout_s = settings.llm_timeout_s
        self.policy = RetryPolicy(
            attempts=settings.llm_max_retries + 1,
            backoff_s=settings.llm_backoff_s,
            backoff_max_s=settings.llm_backoff_max_s,
            max_server_wait_s=settings.llm_backoff_max_s,
        )
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._resume_at = 0.0  # monotonic time before which no attempt starts (quota used up)

    def _open(self) -> aiohttp.ClientSession:
        """The run's HTTP session, opened on first use (inside the running event loop)."""
        if self._session is None:
            timeout = aiohttp.ClientTimeout(
                total=None, sock_connect=self.timeout_s, sock_read=self.timeout_s
            )
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool_size),
                timeout=timeout,
                trust_env=True,  # proxies from the environment, as the SDK's transport does
            )
        return self._session

    async def close(self) -> None:
        """Close the HTTP pool."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> LLMClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _post(self, body: bytes) -> tuple[object, Mapping[str, str]]:
        """One attempt on the wire: the answer's JSON and its headers; raises
        :class:`_StatusError` for an HTTP error, :class:`_Malformed` for a 200 that is not JSON,
        the transport's exceptions for the rest."""
        session = self._open()
        async with session.post(
            self._url, data=body, headers=self._headers, allow_redirects=False
        ) as response:
            raw = await response.read()
            if response.status >= 300:
                headers = {k.lower(): v for k, v in response.headers.items()}
                raise _StatusError(response.status, headers, _body(raw))
            try:
                return json.loads(raw), response.headers
            except ValueError as exc:
                raise _Malformed(f"the body is not JSON ({exc})") from None

    async def complete(
        self,
        model: str,
        messages: Sequence[dict[str, Any]],
        parameters: dict[str, Any],
        *,
        stopped: Callable[[], bool] | None = None,
    ) -> LLMAnswer:
        """One chat completion, retried as the policy allows.

        Raises :class:`CallFailed` when it fails for good, :class:`CallStopped` when ``stopped()``
        turns true before an attempt (the run stopped: nothing more is sent).
        """
        started = time.monotonic()
        attempts = 0
        # The body is built once; every attempt sends the same bytes.
        body = json.dumps({"model": model, "messages": list(messages), **parameters}).encode()

        async def attempt() -> tuple[str, str | None, int | None, int | None, str | None]:
            nonlocal attempts, started
            if stopped is not None and stopped():
                raise CallStopped
            pause = self._resume_at - time.monotonic()
            if pause > 0:
                await self._sleep(pause)
            attempts += 1
            started = time.monotonic()
            async with asyncio.timeout(self.timeout_s):
                answer, headers = await self._post(body)
            self._observe(headers)
            return _read(answer)

        def on_retry(failure: Failure, wait: float) -> None:
            log.info("LLM attempt failed (%s); retrying in %.2fs", failure.reason, wait)

        try:
            (
                text,
                finish_reason,
                prompt_tokens,
                completion_tokens,
                served_by,
            ) = await call_with_retries(
                attempt,
                self.policy,
                classify=self._classify,
                sleep=self._sleep,
                on_retry=on_retry,
                rng=self._rng,
            )
        except Failure as failure:
            raise CallFailed(
                self._scrub(str(failure)),
                reason=failure.reason,
                attempts=failure.attempts,
                transient=failure.transient,
            ) from None
        return LLMAnswer(
            text=text,
            finish_reason=finish_reason,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            model=served_by,
            attempts=attempts,
            latency_ms=int((time.monotonic() - started) * 1000),
        )

    def _observe(self, headers: Mapping[str, str]) -> None:
        """Pause every call until the quota resets when an answer says it is used up (at most
        ``llm_backoff_max_s``)."""
        wait = server_wait_seconds(
            {k: v for k, v in headers.items() if k.lower().startswith("x-ratelimit-")}
        )
        if wait:
            wait = min(wait, self.policy.max_server_wait_s)
            self._resume_at = max(self._resume_at, time.monotonic() + wait)

    def _classify(self, exc: BaseException) -> Failure | None:
        """What a failed attempt means; None for exceptions that are bugs of ours (and for
        :class:`CallStopped`, which is raised as it is)."""
        if isinstance(exc, _StatusError):
            return self._status_failure(exc)
        if isinstance(exc, aiohttp.ConnectionTimeoutError | aiohttp.ClientConnectorError):
            return _transient(Reason.LLM_CONNECTION_ERROR, "the endpoint could not be reached")
        if isinstance(exc, TimeoutError):  # asyncio's and aiohttp's read timeouts alike
            return _transient(Reason.LLM_TIMEOUT, f"no answer within {self.timeout_s:g}s")
        if isinstance(exc, aiohttp.ClientError | ConnectionError):
            return _transient(Reason.LLM_CONNECTION_ERROR, "the endpoint could not be reached")
        if isinstance(exc, _Malformed):
            # A 200 whose body is not a chat completion: the server misbehaved, try again.
            return _transient(Reason.LLM_ERROR, self._scrub(f"malformed answer: {exc}"))
        return None

    def _status_failure(self, exc: _StatusError) -> Failure:
        status = exc.status
        headers = exc.headers
        code, kind, message = _error_fields(exc)
        detail = self._scrub(f"HTTP {status}: {message}")
        wait = server_wait_seconds(headers)
        if status in (401, 403):
            reason, transient = Reason.LLM_AUTH_ERROR, False
        elif status == 429 and "insufficient_quota" in (code, kind):
            reason, transient = Reason.LLM_QUOTA_EXHAUSTED, False
        elif status == 429:
            reason, transient = Reason.LLM_RATE_LIMITED, True
        elif status == 408:
            reason, transient = Reason.LLM_TIMEOUT, True
        elif status >= 500:
            reason, transient = Reason.LLM_SERVER_ERROR, True
        elif status == 409:  # a conflict on the server's side, worth another try
            reason, transient = Reason.LLM_ERROR, True
        else:
            reason, transient = Reason.LLM_BAD_REQUEST, False
        should_retry = (headers.get("x-should-retry") or "").strip().lower()
        if reason.value not in STOPPING and should_retry in ("true", "false"):
            transient = should_retry == "true"
        return Failure(
            detail, reason=reason.value, transient=transient, wait_s=wait, status=status, code=code
        )

    def _scrub(self, text: str) -> str:
        return redact.redact(text[:_MESSAGE_CHARS], extra=(self._secret,))


def _transient(reason: Reason, message: str) -> Failure:
    return Failure(message, reason=reason.value, transient=True)


def _body(raw: bytes) -> object:
    """An error answer's body: its JSON when it is JSON, else its text."""
    text = raw.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


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


def _error_fields(exc: _StatusError) -> tuple[str | None, str | None, str]:
    """(code, type, message) of an error answer, as far as its body says."""
    body = exc.body
    error = body.get("error", body) if isinstance(body, dict) else None
    fallback = f"Error code: {exc.status} - {body}"
    if isinstance(error, dict):
        code, kind = error.get("code"), error.get("type")
        message = error.get("message")
        return (
            code if isinstance(code, str) else None,
            kind if isinstance(kind, str) else None,
            str(message if message is not None else fallback)[:_MESSAGE_CHARS],
        )
    return None, None, fallback[:_MESSAGE_CHARS]
