"""What the Hub emulator does to a request besides answering it: the Hub's quotas, latency, seeded
429 and 5xx answers, and a gauge of the requests in flight that can hold them until enough have
arrived.

:class:`Quotas` counts requests as the Hub does: per caller (its token, else its address) and per
bucket (``api`` for ``/api/...``, ``resolvers`` for ``.../resolve/...``, ``pages`` for the other
Hub pages; the Dataset Viewer's endpoints are in none), in fixed windows. Every answer in a bucket
carries ``RateLimit: "api";r=<left>;t=<seconds to the reset>`` and ``RateLimit-Policy: "fixed
window";"api";q=<quota>;w=<window>``; past the quota the answer is a 429 with those headers only
(no ``Retry-After``), as the Hub's.

:class:`FaultInjection` is an ASGI middleware in front of the Hub and viewer routes. A fault is
decided per request by :class:`~dynosaur.emulators._server.Dice` (seeded by the request and its
attempt), so a run is reproducible and a retried request gets a fresh draw.

:class:`InFlight` measures concurrency at the server, where it happens: a test reads the peak
instead of trusting a client's own counter, and :meth:`InFlight.hold` makes the first requests
wait until ``n`` are in flight at once, so "the client keeps n requests in flight" is observed
without relying on latency or timing.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
import time
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dynosaur.emulators._server import Dice, json_response
from dynosaur.emulators.options import HubOptions

QUOTA_MESSAGE = "You have exceeded our hourly quotas for action: api. Retry later."
BUCKET_MESSAGE = (
    "429 Too Many Requests: you have reached your '{bucket}' rate limit. Retry after {reset} "
    "seconds, or log in / upgrade your plan for higher limits."
)
_VIEWER_PATHS = frozenset({"/healthcheck", "/is-valid", "/splits", "/info", "/first-rows", "/rows"})
SERVER_ERROR_MESSAGE = "Internal Error - We're working hard to fix this as soon as possible!"


def request_id(scope: Scope) -> str:
    """The id the emulator gave this request (sent back as ``X-Request-Id``)."""
    return str(scope.get("state", {}).get("request_id", ""))


class Faults:
    """The fault knobs in force; :meth:`apply` changes them between requests."""

    def __init__(self, options: HubOptions) -> None:
        self.dice = Dice(options.seed)
        self.latency = 0.0
        self.rate_429 = 0.0
        self.rate_5xx = 0.0
        self.retry_after = 1.0
        self.apply(options)

    def apply(self, options: HubOptions) -> None:
        """Take the fault knobs of ``options`` (checked there)."""
        self.latency = options.latency
        self.rate_429 = options.rate_429
        self.rate_5xx = options.rate_5xx
        self.retry_after = options.retry_after


def bucket_of(path: str) -> str | None:
    """The Hub's rate-limit bucket of a request path (None: the viewer, not counted)."""
    if path in _VIEWER_PATHS:
        return None
    if path.startswith("/api/"):
        return "api"
    if "/resolve/" in path:
        return "resolvers"
    return "pages"


class Quotas:
    """Fixed-window request counts per (caller, bucket); windows start at the emulator's start
    and follow each other every ``quota_window`` seconds (a real clock, not the simulated now)."""

    def __init__(self, options: HubOptions, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.start = clock()
        self._counts: dict[tuple[str, str], tuple[int, int]] = {}
        self._lock = threading.Lock()
        self.window = 300
        self._anonymous: dict[str, int] = {}
        self._token: dict[str, int] = {}
        self.apply(options)

    def apply(self, options: HubOptions) -> None:
        """Take the quota knobs of ``options``."""
        self.window = options.quota_window
        self._anonymous = {
            "api": options.quota_api,
            "resolvers": options.quota_resolvers,
            "pages": options.quota_pages,
        }
        self._token = {
            "api": options.token_quota_api,
            "resolvers": options.token_quota_resolvers,
            "pages": options.token_quota_pages,
        }

    def quota(self, bucket: str, token: bool) -> int:
        """Requests allowed per window in ``bucket`` (0: no limit)."""
        return (self._token if token else self._anonymous)[bucket]

    def take(self, caller: str, bucket: str, token: bool) -> tuple[bool, int, int, int, int]:
        """Count one request: (allowed, remaining, seconds to the reset (rounded up), quota,
        window number)."""
        quota = self.quota(bucket, token)
        elapsed = self.clock() - self.start
        index = int(elapsed // self.window)
        reset = max(1, math.ceil((index + 1) * self.window - elapsed))
        with self._lock:
            seen, used = self._counts.get((caller, bucket), (index, 0))
            if seen != index:
                used = 0
            allowed = used < quota
            if allowed:
                used += 1
            self._counts[(caller, bucket)] = (index, used)
        return allowed, quota - used, reset, quota, index


class FaultInjection:
    """ASGI middleware: count the request against its quota (a 429 past it), wait ``latency``,
    then answer 429 (with ``Retry-After``) or 500/502/503 at the configured rates, else pass the
    request on."""

    def __init__(self, app: ASGIApp, faults: Faults, quotas: Quotas | None = None) -> None:
        self.app = app
        self.faults = faults
        self.quotas = quotas

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        faults = self.faults
        bucket = bucket_of(scope["path"]) if self.quotas is not None else None
        if bucket is not None and self.quotas is not None:
            headers = {k.lower(): v for k, v in scope.get("headers", [])}
            auth = headers.get(b"authorization")
            token = auth is not None
            caller = auth.decode("latin-1") if auth else str((scope.get("client") or ("",))[0])
            if self.quotas.quota(bucket, token):
                allowed, left, reset, quota, index = self.quotas.take(caller, bucket, token)
                scope.setdefault("state", {})["quota"] = (bucket, index)
                limit = [
                    (b"ratelimit", f'"{bucket}";r={left};t={reset}'.encode()),
                    (
                        b"ratelimit-policy",
                        f'"fixed window";"{bucket}";q={quota};w={self.quotas.window}'.encode(),
                    ),
                ]
                if not allowed:
                    message = BUCKET_MESSAGE.format(bucket=bucket, reset=reset)
                    answer = json_response(
                        {"error": message}, 429, {"X-Request-Id": request_id(scope)}
                    )
                    answer.raw_headers.extend(limit)
                    await answer(scope, receive, send)
                    return
                send = _with_headers(send, limit)
        if faults.latency > 0:
            await asyncio.sleep(faults.latency)
        if not (faults.rate_429 or faults.rate_5xx):  # no draw: attempts count only with faults
            await self.app(scope, receive, send)
            return
        query = scope.get("query_string", b"").decode("latin-1")
        rng, _ = faults.dice.roll(f"{scope['method']} {scope['path']}?{query}")
        draw = rng.random()
        ident = {"X-Request-Id": request_id(scope)}
        if draw < faults.rate_429:
            seconds = max(0, math.ceil(faults.retry_after))
            answer = json_response(
                {"error": QUOTA_MESSAGE}, 429, {"Retry-After": str(seconds), **ident}
            )
        elif draw < faults.rate_429 + faults.rate_5xx:
            answer = json_response(
                {"error": SERVER_ERROR_MESSAGE}, rng.choice((500, 502, 503)), ident
            )
        else:
            await self.app(scope, receive, send)
            return
        await answer(scope, receive, send)


def _with_headers(send: Send, extra: list[tuple[bytes, bytes]]) -> Send:
    """``send`` adding ``extra`` headers to the answer's start."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    return sending


class InFlight:
    """Requests being handled now, the most at once so far, and an optional hold.

    Used on the server's event loop only (no locks needed); read from any thread.
    """

    def __init__(self) -> None:
        self.now = 0
        self.peak = 0
        self._hold = 0
        self._hold_s = 0.0
        self._open: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def hold(self, n: int, timeout_s: float) -> None:
        """From now on, hold each request until ``n`` are in flight at once (or ``timeout_s``
        passed); once that happened, requests are served as they come."""
        self._hold, self._hold_s, self._open = n, timeout_s, None

    @contextlib.asynccontextmanager
    async def entered(self) -> Any:
        """Count a request for as long as it is handled (holding it while the hold is on)."""
        self.now += 1
        self.peak = max(self.peak, self.now)
        try:
            if self._hold:
                await self._wait()
            yield
        finally:
            self.now -= 1

    async def _wait(self) -> None:
        if self._open is None:
            self._open = asyncio.Event()
            self._loop = asyncio.get_running_loop()
        if self.now >= self._hold:
            self._open.set()
            self._hold = 0
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._open.wait(), self._hold_s)

    def release(self) -> None:
        """Let every held request go (from any thread: at stop)."""
        self._hold = 0
        event, loop = self._open, self._loop
        if event is not None and loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(event.set)


__all__ = ["FaultInjection", "Faults", "InFlight", "Quotas", "bucket_of", "request_id"]
