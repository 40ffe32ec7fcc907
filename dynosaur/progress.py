"""Progress reporting for long steps, decoupled from how it is shown.

Library functions take an optional :class:`Progress`; the CLI passes a rich progress bar
(:mod:`dynosaur.cli.progress`), Airflow tasks a :class:`LogProgress` that writes a log line every
few percent, and tests nothing (:class:`NullProgress`).
"""

from __future__ import annotations

import logging
import time
from typing import Any, Protocol


class Progress(Protocol):
    """Receives progress of one step: a total, then advances with optional live figures."""

    def start(self, total: int | None, description: str) -> None:
        """Begin a step of ``total`` items (None when unknown)."""

    def advance(self, n: int = 1, **figures: Any) -> None:
        """``n`` more items done; ``figures`` are live counters (in flight, tokens, dollars...)."""

    def finish(self) -> None:
        """The step is over."""


class NullProgress:
    """Shows nothing."""

    def start(self, total: int | None, description: str) -> None:
        pass

    def advance(self, n: int = 1, **figures: Any) -> None:
        pass

    def finish(self) -> None:
        pass


class LogProgress:
    """Logs a line each time another ``every`` percent is done (or every ``seconds``)."""

    def __init__(
        self, logger: logging.Logger | None = None, every: float = 10.0, seconds: float = 30.0
    ) -> None:
        self.log = logger or logging.getLogger("dynosaur.progress")
        self.every = every
        self.seconds = seconds
        self.total: int | None = None
        self.done = 0
        self.description = ""
        self._next_pct = every
        self._last = time.monotonic()

    def start(self, total: int | None, description: str) -> None:
        self.total, self.done, self.description = total, 0, description
        self._next_pct, self._last = self.every, time.monotonic()
        self.log.info("%s: starting (%s items)", description, total if total is not None else "?")

    def advance(self, n: int = 1, **figures: Any) -> None:
        self.done += n
        pct = 100.0 * self.done / self.total if self.total else None
        now = time.monotonic()
        if (pct is not None and pct >= self._next_pct) or now - self._last >= self.seconds:
            extra = " ".join(f"{k}={v}" for k, v in figures.items())
            shown = f"{pct:.0f}%" if pct is not None else "?"
            self.log.info(
                "%s: %s/%s (%s) %s", self.description, self.done, self.total, shown, extra
            )
            self._last = now
            if pct is not None:
                while self._next_pct <= pct:
                    self._next_pct += self.every

    def finish(self) -> None:
        self.log.info("%s: done (%s items)", self.description, self.done)
