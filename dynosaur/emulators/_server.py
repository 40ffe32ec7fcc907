"""What both emulators share: a uvicorn server on a loopback port in a background thread, seeded
per-request fault decisions, and a thread-safe request log.

The server binds its socket before the thread starts, so ``url`` is known (and connections queue)
as soon as :meth:`BackgroundServer.start` returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import random
import socket
import threading
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import uvicorn
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

# How long stop() waits for the server thread; a hung handler never blocks it (see Hangs).
_STOP_TIMEOUT_S = 10.0


class _Server(uvicorn.Server):
    """uvicorn.Server that reports the end of its startup (success or failure) through an event."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self.loop = asyncio.get_running_loop()
        try:
            await super().startup(sockets=sockets)
        finally:
            self.ready.set()


class BackgroundServer:
    """An ASGI app served by uvicorn on 127.0.0.1 (ephemeral port by default)."""

    def __init__(self, app: ASGIApp, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._app = app
        self.host = host
        self.port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self.hangs = Hangs()

    @property
    def origin(self) -> str:
        """``http://HOST:PORT`` of the running server."""
        if self._socket is None:
            raise RuntimeError("the emulator is not started")
        return f"http://{self.host}:{self.port}"

    def _config(self) -> uvicorn.Config:
        return uvicorn.Config(
            self._app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            # Tests and the demo open many short connections; keep idle ones around briefly.
            timeout_keep_alive=30,
            backlog=4096,
        )

    def _bind(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(4096)
        self.port = sock.getsockname()[1]
        return sock

    def start(self) -> None:
        """Bind the port and serve in a daemon thread; returns once the server accepts requests."""
        if self._thread is not None:
            raise RuntimeError("the emulator is already started")
        self._socket = self._bind()
        self._server = _Server(self._config())
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            name=f"emulator-{self.port}",
            daemon=True,
        )
        self._thread.start()
        self._server.ready.wait(_STOP_TIMEOUT_S)
        if not self._server.started:
            self.stop()
            raise RuntimeError(f"the emulator could not start on {self.host}:{self.port}")

    def stop(self) -> None:
        """Stop serving: release hung requests, close connections, join the thread."""
        server, thread = self._server, self._thread
        if server is not None:
            if server.loop is not None and not server.loop.is_closed():
                with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                    server.loop.call_soon_threadsafe(self.hangs.release)
            server.should_exit = True
        if thread is not None:
            thread.join(_STOP_TIMEOUT_S)
            if thread.is_alive() and server is not None:
                server.force_exit = True
                thread.join(_STOP_TIMEOUT_S)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def serve_forever(self, on_ready: Callable[[], None] | None = None) -> None:
        """Serve in the calling thread until Ctrl-C (the CLI); ``on_ready`` runs once bound."""
        self._socket = self._bind()
        self._server = _Server(self._config())
        if on_ready is not None:
            on_ready()
        try:
            self._server.run(sockets=[self._socket])
        finally:
            self._socket.close()
            self._socket = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class ServedEmulator:
    """What both emulators do with their :class:`BackgroundServer` (``self._server``): start,
    stop, serve in the foreground, and work as a context manager."""

    _server: BackgroundServer

    def start(self) -> Self:
        """Start serving (also done by ``with``)."""
        self._server.start()
        return self

    def stop(self) -> None:
        """Stop serving (requests left hanging are released)."""
        self._server.stop()

    def serve_forever(self, on_ready: Callable[[], None] | None = None) -> None:
        """Serve in the foreground until Ctrl-C (the CLI); ``on_ready`` runs once bound."""
        self._server.serve_forever(on_ready)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Hangs:
    """Requests told to hang wait here until their time is up or the server stops."""

    def __init__(self) -> None:
        self._event: asyncio.Event | None = None

    async def wait(self, seconds: float) -> None:
        """Sleep ``seconds`` unless the server stops first."""
        if self._event is None:
            self._event = asyncio.Event()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout=seconds)

    def release(self) -> None:
        """Wake every hanging request (called on the server's loop at stop)."""
        if self._event is not None:
            self._event.set()


class Dice:
    """Seeded random draws per request identity and attempt.

    The n-th time the same request (same key) arrives, it gets the n-th draw of a generator
    seeded by (seed, key, n): a run is reproducible whatever the interleaving of different
    requests, and a retried request gets a fresh draw, so it can succeed.
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._attempts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def roll(self, key: str) -> tuple[random.Random, int]:
        """A generator for this arrival of ``key`` and its attempt number (1-based)."""
        with self._lock:
            self._attempts[key] += 1
            attempt = self._attempts[key]
        digest = hashlib.sha256(f"{self.seed}\x00{key}\x00{attempt}".encode()).digest()
        return random.Random(int.from_bytes(digest[:8], "big")), attempt


class RequestLog:
    """Entries appended by the server thread, read as copies by tests; optionally a JSONL file."""

    def __init__(self, path: Path | None = None, keep: int = 200_000) -> None:
        # Bounded, so a long-running `dynosaur emulate` does not grow without end.
        self._entries: deque[dict[str, Any]] = deque(maxlen=keep)
        self._statuses: Counter[int] = Counter()
        self._lock = threading.Lock()
        self.path = path

    def append(self, entry: dict[str, Any]) -> None:
        """Record one request (and append it to the file, flushed, when there is one)."""
        with self._lock:
            self._entries.append(entry)
            self._statuses[int(entry.get("status") or 0)] += 1
            if self.path is not None:
                with self.path.open("a", encoding="utf-8") as out:
                    out.write(json.dumps(entry, ensure_ascii=False, default=str) + "\n")

    def entries(self) -> list[dict[str, Any]]:
        """A copy of every entry so far."""
        with self._lock:
            return [dict(e) for e in self._entries]

    def statuses(self) -> Counter[int]:
        """How many requests got each status, since the start."""
        with self._lock:
            return Counter(self._statuses)


def check_rate(name: str, value: float) -> float:
    """A probability knob, validated."""
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be between 0 and 1, got {value}")
    return float(value)


def json_response(
    content: Any, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """Compact JSON (non-ASCII kept), as the real services send it."""
    body = json.dumps(content, ensure_ascii=False, separators=(",", ":"), default=str)
    return Response(body, status_code, headers=headers, media_type="application/json")


Handler = Callable[[Request], Awaitable[Response]]


async def call_safely(
    handler: Handler,
    request: Request,
    error: Callable[[Exception], Response],
    expected: tuple[type[Exception], ...] = (),
) -> Response:
    """Run a handler; any exception becomes an error answer, never a dead server (unexpected
    ones are logged with their traceback)."""
    try:
        return await handler(request)
    except expected as exc:
        return error(exc)
    except Exception as exc:  # the server must survive any bad input
        log.exception("emulator handler failed on %s", request.url.path)
        return error(exc)


async def send_response(response: Response, scope: Scope, receive: Receive, send: Send) -> int:
    """Send ``response`` and return its status (0 when the client went away first)."""
    status = 0

    async def capture(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])
        await send(message)

    with contextlib.suppress(OSError):  # the client went away mid-answer
        await response(scope, receive, capture)
    return status


__all__ = [
    "BackgroundServer",
    "Dice",
    "Hangs",
    "RequestLog",
    "ServedEmulator",
    "call_safely",
    "check_rate",
    "json_response",
    "send_response",
]
