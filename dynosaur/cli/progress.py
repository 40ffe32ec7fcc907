"""A rich progress bar that implements :class:`dynosaur.progress.Progress` for the CLI."""

from __future__ import annotations

from types import TracebackType
from typing import Any

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as RichBar

from dynosaur.cli.common import err_console


class BarProgress:
    """One bar per step on stderr, with live figures (in flight, tokens, dollars...) after it."""

    def __init__(self) -> None:
        self._bar = RichBar(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[figures]}"),
            console=err_console,
            transient=False,
        )
        self._task: Any = None

    def __enter__(self) -> BarProgress:
        self._bar.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._bar.stop()

    def start(self, total: int | None, description: str) -> None:
        self._task = self._bar.add_task(description, total=total, figures="")

    def advance(self, n: int = 1, **figures: Any) -> None:
        shown = "  ".join(f"{k} {_fmt(v)}" for k, v in figures.items())
        self._bar.update(self._task, advance=n, figures=shown)

    def finish(self) -> None:
        if self._task is not None:
            task = self._bar.tasks[self._task]
            if task.total is None:
                self._bar.update(self._task, total=task.completed)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.4f}" if value < 1 else f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
