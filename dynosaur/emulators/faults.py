"""What the Hub emulator does to a request besides answering it: latency, seeded 429 and 5xx
answers, and a gauge of the requests in flight that can hold them until enough have arrived.

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
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from dynosaur.emulators._server import Dice, json_response
from dynosaur.emulators.options import HubOptions

QUOTA_MESSAGE = "You have exceeded our hourly quotas for action: api. Retry later."
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


class FaultInjection:
    """ASGI middleware: wait ``latency``, then answer 429 (with ``Retry-After``) or 500/502/503
    at the configured rates, else pass the request on."""

    def __init__(self, app: ASGIApp, faults: Faults) -> None:
        self.app = app
        self.faults = faults

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        faults = self.faults
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


__all__ = ["FaultInjection", "Faults", "InFlight", "request_id"]
