"""An OpenAI-compatible LLM for task generation, as a real HTTP server.

``POST /v1/chat/completions`` and ``GET /v1/models`` answer what the official ``openai`` SDK
(sync and async) sends and parses. The target dataset is read from the prompt with
:func:`dynosaur.generate.blocks.parse_last_block` (the last ``<dataset>`` block of the user
messages); the answer is a JSON list of up to N tasks (N from ``up to N tasks`` in the prompt,
else 3), or ``{"tasks": [...]}`` when ``response_format`` asks for JSON. Tasks are replayed from
the reference file when it knows the dataset/config, else derived (:mod:`.tasks`).

Token usage, in every answer, is counted deterministically: a token is a run of word characters
or one punctuation character (regex ``\\w+|[^\\w\\s]``); ``prompt_tokens`` counts the text of every
message, ``completion_tokens`` the answer's content. ``max_tokens`` (or
``max_completion_tokens``) cuts the answer at that many tokens with ``finish_reason: "length"``.

The real API's contract: ``context_tokens`` (prompt plus the output allowance beyond it: 400
``context_length_exceeded``); ``quota_requests`` (after that many answers, every request gets 429
``insufficient_quota``); ``rpm``/``tpm`` (per-minute quotas in fixed one-minute windows: every
answer carries ``x-ratelimit-limit|remaining|reset-requests|tokens``, a request beyond them gets
429 ``rate_limit_exceeded``). ``strict`` adds what the kinder default lets pass: an unknown model
is a 404 ``model_not_found``; reasoning-family models (o1, o3, o4, gpt-5...) reject ``max_tokens``
(400 ``unsupported_parameter``) and any temperature but 1 (400 ``unsupported_value``), and spend
64 reasoning tokens of ``max_completion_tokens`` per answer (counted in ``completion_tokens``).

Fault knobs, decided per request from a generator seeded by (seed, request, attempt), so a run
is reproducible and a retried request gets a fresh draw: 429 with ``Retry-After``, 5xx, hang
(no answer for ``hang_seconds``, past the client's timeout), malformed content (prose, no JSON),
truncated content (cut mid-JSON, ``finish_reason: "length"``); plus latency and jitter.

``request_log`` (and the JSONL file ``request_log_path``) holds one entry per request: time,
model, messages_sha256 (``sha256(json.dumps(messages, sort_keys=True))``), dataset, config,
status, attempt, outcome (``{"policy": "replay"|"derive"|"none", "tasks": n, "invalid": [...],
"suspicious": [...]}`` and ``"fault": "rate_limited"|"server_error"|"hang"|"malformed"|"truncated"``
when injected; the answer policy and its knobs are described in :mod:`.tasks`). An entry is
written before its answer is sent, so a client that has its answer finds it in the log.

Concurrency is measured here, at the server: ``peak_in_progress`` is the most chat-completions
requests the server held at once (received, not yet answered). ``hold=N`` answers requests in
groups of N: each waits until N requests are waiting, so a client that keeps N requests in
flight shows a peak of exactly N however slow the machine, and one that sends more than N at
once shows more.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
import time
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from dynosaur.emulators._server import (
    BackgroundServer,
    Dice,
    RequestLog,
    ServedEmulator,
    call_safely,
    check_rate,
    json_response,
    send_response,
)
from dynosaur.emulators.tasks import AnswerPolicy, EmulatedAnswer, answer_tasks, load_reference
from dynosaur.generate.blocks import DatasetBlock, parse_last_block

MODELS = (
    "gpt-4o-mini",
    "gpt-4o",
    "gpt-4.1",
    "gpt-4.1-mini",
    "gpt-4.1-nano",
    "gpt-3.5-turbo",
    "gpt-5",
    "gpt-5-mini",
    "gpt-5-nano",
    "gpt-5.1",
    "o1",
    "o3",
    "o3-mini",
    "o4-mini",
)
# Model families that take only max_completion_tokens and the default temperature (the real
# API answers 400 otherwise), and spend reasoning tokens out of that allowance.
REASONING_FAMILIES = ("o1", "o3", "o4", "gpt-5")
REASONING_TOKENS = 64  # what a reasoning model "thinks" per answer, in strict mode
_DATED = re.compile(r"-\d{4}-\d{2}-\d{2}$")
_QUOTA_MESSAGE = (
    "You exceeded your current quota, please check your plan and billing details. For more "
    "information on this error, read the docs: "
    "https://platform.openai.com/docs/guides/error-codes/api-errors."
)
_TOKEN = re.compile(r"\w+|[^\w\s]")
_CREATED = 1_700_000_000  # a fixed "created" for the model list


def count_tokens(text: str) -> int:
    """Tokens as the emulator counts them (word runs and punctuation marks)."""
    return len(_TOKEN.findall(text))


def cut_tokens(text: str, limit: int) -> str:
    """The prefix of ``text`` that holds its first ``limit`` tokens."""
    if limit <= 0:
        return ""
    for i, match in enumerate(_TOKEN.finditer(text), start=1):
        if i == limit:
            return text[: match.end()]
    return text


def is_reasoning(model: str) -> bool:
    """Whether ``model`` is of a reasoning family (``o3-mini``, ``gpt-5.1``, dated variants)."""
    name = model.lower()
    return any(name == f or name.startswith((f + "-", f + ".")) for f in REASONING_FAMILIES)


def known_model(model: str) -> bool:
    """Whether the emulator serves ``model`` (a dated variant of a known name included)."""
    return _DATED.sub("", model) in MODELS


def _duration(seconds: float) -> str:
    """A reset duration as OpenAI writes it (``1m2.5s``, ``350ms``)."""
    if seconds < 1:
        return f"{max(0, round(seconds * 1000))}ms"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}m{rest:.3f}s" if minutes else f"{rest:.3f}s"


def message_text(message: dict[str, Any]) -> str:
    """The text of a chat message (a string, or the text parts of a list of parts)."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def messages_sha256(messages: Any) -> str:
    """The request identity used in the log: sha256 of the JSON messages with sorted keys."""
    return hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()


class ErrorAnswer(Exception):
    """Raised by a handler to answer with an error in OpenAI's shape."""

    def __init__(
        self,
        status: int,
        message: str,
        type_: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": {"message": message, "type": type_, "param": param, "code": code}}

    def response(self, headers: dict[str, str] | None = None) -> Response:
        return json_response(self.body, self.status, headers)


class RateLimited(ErrorAnswer):
    """A 429 for a used-up per-minute quota, with the ``x-ratelimit-*`` headers."""

    def __init__(self, headers: dict[str, str], kind: str) -> None:
        super().__init__(
            429,
            f"Rate limit reached for {kind} per minute. Please try again in "
            f"{headers.get(f'x-ratelimit-reset-{kind}', '1s')}.",
            kind,
            code="rate_limit_exceeded",
        )
        self.headers = headers

    def response(self, headers: dict[str, str] | None = None) -> Response:
        return super().response({**self.headers, **(headers or {})})


def _validate(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ErrorAnswer(400, "The request body must be a JSON object.")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise ErrorAnswer(400, "you must provide a model parameter", param="model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ErrorAnswer(400, "'messages' must be a non-empty array", param="messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in (
            "system",
            "developer",
            "user",
            "assistant",
            "tool",
        ):
            raise ErrorAnswer(
                400, f"Invalid value for 'messages[{i}].role'", param=f"messages[{i}].role"
            )
    if body.get("stream"):
        raise ErrorAnswer(400, "stream=true is not supported by this endpoint", param="stream")
    temperature = body.get("temperature")
    if temperature is not None and (
        not isinstance(temperature, int | float) or not 0 <= temperature <= 2
    ):
        raise ErrorAnswer(400, "temperature must be a number between 0 and 2", param="temperature")
    n = body.get("n", 1)
    if not isinstance(n, int) or not 1 <= n <= 8:
        raise ErrorAnswer(400, "n must be an integer between 1 and 8", param="n")
    return body


class LLMApp:
    """The ASGI app of the LLM emulator."""

    def __init__(
        self,
        *,
        reference: dict[tuple[str, str | None], list[dict[str, Any]]],
        latency: float,
        jitter: float,
        rate_429: float,
        rate_5xx: float,
        rate_hang: float,
        rate_malformed: float,
        rate_truncated: float,
        invalid_share: float,
        retry_after: float,
        hang_seconds: float,
        seed: int,
        log: RequestLog,
        suspicious_share: float = 0.0,
        obedient: bool = False,
        hold: int = 0,
        server: BackgroundServer | None = None,
        strict: bool = False,
        context_tokens: int = 128_000,
        quota_requests: int = -1,
        rpm: int = 0,
        tpm: int = 0,
    ) -> None:
        self.strict = strict
        self.context_tokens = context_tokens
        self.quota_requests = quota_requests
        self.rpm = rpm
        self.tpm = tpm
        self.answered = 0  # 200 answers so far (insufficient_quota after quota_requests)
        self._window_start = time.monotonic()
        self._window_requests = 0
        self._window_tokens = 0
        self.reference = reference
        self.latency = latency
        self.jitter = jitter
        self.rates = {
            "rate_limited": check_rate("rate_429", rate_429),
            "server_error": check_rate("rate_5xx", rate_5xx),
            "hang": check_rate("rate_hang", rate_hang),
            "malformed": check_rate("rate_malformed", rate_malformed),
            "truncated": check_rate("rate_truncated", rate_truncated),
        }
        if sum(self.rates.values()) > 1:
            raise ValueError("the fault rates must not add up to more than 1")
        self.invalid_share = check_rate("invalid_share", invalid_share)
        self.policy = AnswerPolicy(
            self.invalid_share, check_rate("suspicious_share", suspicious_share), obedient, seed
        )
        self.retry_after = retry_after
        self.hang_seconds = hang_seconds
        self.seed = seed
        self.dice = Dice(seed)
        self.log = log
        if hold < 0:
            raise ValueError(f"hold must be 0 or more, got {hold}")
        self.hold = hold
        self.server = server
        # Chat-completions requests received and not answered yet, and the most at once (both
        # changed on the server's event loop only).
        self.in_progress = 0
        self.peak_in_progress = 0
        self._held: list[asyncio.Future[None]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        chat = request.url.path.rstrip("/").endswith("/chat/completions")
        entry: dict[str, Any] = {
            "time": time.time(),
            "model": None,
            "messages_sha256": None,
            "dataset": None,
            "config": None,
            "attempt": None,
            "outcome": None,
        }
        if chat:
            self.in_progress += 1
            self.peak_in_progress = max(self.peak_in_progress, self.in_progress)
        try:
            response = await call_safely(
                lambda r: self._route(r, entry), request, self._error, (ErrorAnswer,)
            )
        finally:
            if chat:
                self.in_progress -= 1
        if chat:
            # Logged (and counted out) before the answer leaves: once the client has its answer,
            # the log holds the entry, and the next request it sends finds this one finished.
            entry["status"] = response.status_code
            self.log.append(entry)
        await send_response(response, scope, receive, send)

    @staticmethod
    def _error(exc: Exception) -> Response:
        if isinstance(exc, ErrorAnswer):
            return exc.response()
        return ErrorAnswer(
            500, "The server had an error while processing your request.", "server_error"
        ).response()

    async def _route(self, request: Request, entry: dict[str, Any]) -> Response:
        path = request.url.path.rstrip("/")
        if path == "/v1/chat/completions":
            if request.method != "POST":
                raise ErrorAnswer(405, f"Method {request.method} not allowed for {path}")
            return await self.chat(request, entry)
        if path == "/v1/models" and request.method == "GET":
            return json_response({"object": "list", "data": [self._model(m) for m in MODELS]})
        if path.startswith("/v1/models/") and request.method == "GET":
            return json_response(self._model(path[len("/v1/models/") :]))
        raise ErrorAnswer(404, f"Invalid URL ({request.method} {request.url.path})")

    @staticmethod
    def _model(name: str) -> dict[str, Any]:
        return {"id": name, "object": "model", "created": _CREATED, "owned_by": "dynosaur"}

    async def chat(self, request: Request, entry: dict[str, Any]) -> Response:
        raw = await request.body()
        try:
            body = _validate(json.loads(raw))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ErrorAnswer(
                400,
                "We could not parse the JSON body of your request. (HINT: This likely means "
                "you aren't using your HTTP library correctly.)",
            ) from None
        messages = body["messages"]
        limit_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
        prompt_tokens = sum(count_tokens(message_text(m)) for m in messages)
        self._contract(body, prompt_tokens, limit_tokens)
        quota_headers = self._rate_limit(prompt_tokens + (limit_tokens or 0))
        await self._wait_for_group()
        digest = messages_sha256(messages)
        user_text = "\n".join(message_text(m) for m in messages if m.get("role") == "user")
        all_text = "\n".join(message_text(m) for m in messages)
        block = parse_last_block(user_text) or parse_last_block(all_text)
        entry.update(
            model=body["model"],
            messages_sha256=digest,
            dataset=block.name if block else None,
            config=block.config if block else None,
        )
        rng, attempt = self.dice.roll(f"{body['model']}\x00{digest}")
        entry["attempt"] = attempt
        delay = self.latency + (rng.uniform(0, self.jitter) if self.jitter > 0 else 0.0)
        if delay > 0:
            await asyncio.sleep(delay)
        fault = self._fault(rng.random())
        if self.quota_requests >= 0 and self.answered >= self.quota_requests:
            entry["outcome"] = {"fault": "insufficient_quota"}
            return ErrorAnswer(
                429, _QUOTA_MESSAGE, "insufficient_quota", code="insufficient_quota"
            ).response(quota_headers)
        if fault == "rate_limited":
            entry["outcome"] = {"fault": fault}
            wait_ms = max(1, round(self.retry_after * 1000))
            return ErrorAnswer(
                429,
                f"Rate limit reached for {body['model']}. Please try again in "
                f"{self.retry_after:g}s.",
                "requests",
                code="rate_limit_exceeded",
            ).response(
                {
                    "retry-after-ms": str(wait_ms),
                    "retry-after": str(max(1, math.ceil(self.retry_after))),
                    "x-ratelimit-remaining-requests": "0",
                }
            )
        if fault == "server_error":
            entry["outcome"] = {"fault": fault}
            return ErrorAnswer(
                rng.choice((500, 502, 503)),
                "The server had an error while processing your request. Sorry about that!",
                "server_error",
            ).response()
        if fault == "hang":
            entry["outcome"] = {"fault": fault}
            hangs = self.server.hangs if self.server is not None else None
            if hangs is not None:
                await hangs.wait(self.hang_seconds)
            else:
                await asyncio.sleep(self.hang_seconds)
            return ErrorAnswer(504, "Gateway timeout", "server_error").response()

        answer = self._tasks(block, all_text)
        outcome: dict[str, Any] = {
            "policy": answer.policy,
            "tasks": len(answer.tasks),
            "invalid": answer.invalid,
            "suspicious": answer.suspicious,
        }
        content = self._content(answer, body)
        finish = "stop"
        if fault == "malformed":
            content = self._prose(block)
            outcome["fault"] = fault
        elif fault == "truncated":
            content = content[: max(1, int(len(content) * rng.uniform(0.3, 0.7)))]
            finish = "length"
            outcome["fault"] = fault
        limit = limit_tokens
        reasoning = REASONING_TOKENS if self.strict and is_reasoning(body["model"]) else 0
        if isinstance(limit, int) and reasoning:
            reasoning = min(reasoning, limit)
            limit -= reasoning
        if isinstance(limit, int) and count_tokens(content) > limit:
            content = cut_tokens(content, limit)
            finish = "length"
            outcome["cut_at_max_tokens"] = True
        entry["outcome"] = outcome
        completion_tokens = count_tokens(content) + reasoning
        self.answered += 1
        choice = {
            "message": {"role": "assistant", "content": content, "refusal": None},
            "finish_reason": finish,
            "logprobs": None,
        }
        return json_response(
            {
                "id": f"chatcmpl-{digest[:12]}{attempt:04d}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body["model"],
                "choices": [{"index": i, **choice} for i in range(body.get("n", 1))],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                    "completion_tokens_details": {"reasoning_tokens": reasoning},
                },
                "system_fingerprint": "fp_dynosaur_emulator",
            },
            headers={"x-request-id": f"req_{digest[:16]}_{attempt}", **quota_headers},
        )

    def _contract(self, body: dict[str, Any], prompt_tokens: int, limit: Any) -> None:
        """The real API's refusals: the context window (always), and in strict mode unknown
        models and the parameters reasoning-family models do not take (400s in OpenAI's
        shape, with its messages, params and codes)."""
        model = body["model"]
        if self.strict and not known_model(model):
            raise ErrorAnswer(
                404,
                f"The model `{model}` does not exist or you do not have access to it.",
                code="model_not_found",
            )
        if self.strict and is_reasoning(model):
            if "max_tokens" in body:
                raise ErrorAnswer(
                    400,
                    "Unsupported parameter: 'max_tokens' is not supported with this model. "
                    "Use 'max_completion_tokens' instead.",
                    param="max_tokens",
                    code="unsupported_parameter",
                )
            temperature = body.get("temperature")
            if temperature is not None and temperature != 1:
                raise ErrorAnswer(
                    400,
                    f"Unsupported value: 'temperature' does not support {temperature:g} with "
                    "this model. Only the default (1) value is supported.",
                    param="temperature",
                    code="unsupported_value",
                )
        wanted = prompt_tokens + (limit if isinstance(limit, int) else 0)
        if wanted > self.context_tokens:
            raise ErrorAnswer(
                400,
                f"This model's maximum context length is {self.context_tokens} tokens. However, "
                f"you requested {wanted} tokens ({prompt_tokens} in the messages, "
                f"{wanted - prompt_tokens} in the completion). Please reduce the length of the "
                "messages or completion.",
                param="messages",
                code="context_length_exceeded",
            )

    def _rate_limit(self, tokens: int) -> dict[str, str]:
        """Count a request against the per-minute quotas (``rpm``, ``tpm``; fixed one-minute
        windows); the ``x-ratelimit-*`` headers of the answer, and a 429 beyond a quota."""
        if not (self.rpm or self.tpm):
            return {}
        now = time.monotonic()
        if now - self._window_start >= 60:
            self._window_start, self._window_requests, self._window_tokens = now, 0, 0
        reset = _duration(60 - (now - self._window_start))
        over = (self.rpm and self._window_requests >= self.rpm) or (
            self.tpm and self._window_tokens + tokens > self.tpm
        )
        if not over:
            self._window_requests += 1
            self._window_tokens += tokens
        headers: dict[str, str] = {}
        for kind, quota, used in (
            ("requests", self.rpm, self._window_requests),
            ("tokens", self.tpm, self._window_tokens),
        ):
            if quota:
                headers[f"x-ratelimit-limit-{kind}"] = str(quota)
                headers[f"x-ratelimit-remaining-{kind}"] = str(max(0, quota - used))
                headers[f"x-ratelimit-reset-{kind}"] = reset
        if over:
            kind = "requests" if self.rpm and self._window_requests >= self.rpm else "tokens"
            raise RateLimited(headers, kind)
        return headers

    async def _wait_for_group(self) -> None:
        """With ``hold``: wait until ``hold`` requests wait (or the server stops)."""
        if self.hold <= 1:
            return
        arrived: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._held.append(arrived)
        if len(self._held) >= self.hold:
            group, self._held = self._held, []
            for future in group:
                future.set_result(None)
        if self.server is None:
            await arrived
            return
        stopped = asyncio.ensure_future(self.server.hangs.wait(self.hang_seconds))
        try:
            await asyncio.wait({arrived, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()

    def _fault(self, draw: float) -> str | None:
        edge = 0.0
        for name, rate in self.rates.items():
            edge += rate
            if draw < edge:
                return name
        return None

    def _tasks(self, block: DatasetBlock | None, text: str) -> EmulatedAnswer:
        return answer_tasks(block, text, self.reference, self.policy)

    @staticmethod
    def _content(answer: EmulatedAnswer, body: dict[str, Any]) -> str:
        response_format = body.get("response_format")
        kind = response_format.get("type") if isinstance(response_format, dict) else None
        if kind in ("json_schema", "json_object"):
            return json.dumps({"tasks": answer.tasks}, ensure_ascii=False)
        return json.dumps(answer.tasks, ensure_ascii=False)

    @staticmethod
    def _prose(block: DatasetBlock | None) -> str:
        fields = " and ".join(block.fields[:2]) if block and block.fields else "the data"
        return (
            "Sure! This dataset looks interesting. A good task would be to look at "
            f"{fields} and ask a model to explain how they relate. Let me know if you "
            "would like more ideas."
        )


class LLMEmulator(ServedEmulator):
    """The LLM emulator as a context manager: a real HTTP server on 127.0.0.1.

    >>> with LLMEmulator(reference=path) as llm:
    ...     OpenAI(base_url=llm.base_url, api_key="x").chat.completions.create(...)
    """

    def __init__(
        self,
        reference: Path | None = None,
        latency: float = 0.0,
        jitter: float = 0.0,
        rate_429: float = 0.0,
        rate_5xx: float = 0.0,
        rate_hang: float = 0.0,
        rate_malformed: float = 0.0,
        rate_truncated: float = 0.0,
        invalid_share: float = 0.0,
        suspicious_share: float = 0.0,
        obedient: bool = False,
        retry_after: float = 1.0,
        hang_seconds: float = 3600,
        seed: int = 0,
        request_log_path: Path | None = None,
        hold: int = 0,
        strict: bool = False,
        context_tokens: int = 128_000,
        quota_requests: int = -1,
        rpm: int = 0,
        tpm: int = 0,
        *,
        port: int = 0,
        host: str = "127.0.0.1",
    ) -> None:
        self._log = RequestLog(Path(request_log_path) if request_log_path else None)
        self.app = LLMApp(
            reference=load_reference(reference) if reference is not None else {},
            latency=latency,
            jitter=jitter,
            rate_429=rate_429,
            rate_5xx=rate_5xx,
            rate_hang=rate_hang,
            rate_malformed=rate_malformed,
            rate_truncated=rate_truncated,
            invalid_share=invalid_share,
            suspicious_share=suspicious_share,
            obedient=obedient,
            retry_after=retry_after,
            hang_seconds=hang_seconds,
            seed=seed,
            log=self._log,
            hold=hold,
            strict=strict,
            context_tokens=context_tokens,
            quota_requests=quota_requests,
            rpm=rpm,
            tpm=tpm,
        )
        self._server = BackgroundServer(self.app, host=host, port=port)
        self.app.server = self._server

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``: the OpenAI base URL."""
        return self._server.origin + "/v1"

    @property
    def request_log(self) -> list[dict[str, Any]]:
        """One dict per chat-completions request (see the module docstring)."""
        return self._log.entries()

    @property
    def status_counts(self) -> dict[int, int]:
        """Chat-completions requests answered per HTTP status since the start."""
        return dict(self._log.statuses())

    @property
    def peak_in_progress(self) -> int:
        """The most chat-completions requests the server held at once since the start."""
        return self.app.peak_in_progress
