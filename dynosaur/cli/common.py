"""What every command shares: settings, the store, error reporting and summary tables."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ParamSpec, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import Engine

from dynosaur.errors import DynosaurError, UsageError
from dynosaur.model import StepSummary
from dynosaur.settings import Settings, get_settings

console = Console()
err_console = Console(stderr=True)

P = ParamSpec("P")
R = TypeVar("R")


def reports_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn library errors into one red line and exit status 1 instead of a traceback."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except DynosaurError as exc:
            err_console.print(f"[bold red]error:[/] {exc}")
            raise typer.Exit(1) from None
        except ValidationError as exc:
            err_console.print(f"[bold red]invalid setting:[/] {exc}")
            raise typer.Exit(2) from None

    return wrapper


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment with the command's flags (those not None) on top."""
    return get_settings(**{k: v for k, v in overrides.items() if v is not None})


def store(settings: Settings) -> Engine:
    """The migrated store for ``settings``."""
    from dynosaur.store import open_store

    return open_store(settings)


def setup_logging(verbose: bool) -> None:
    """Log to stderr: INFO with --verbose, WARNING otherwise."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def parse_ids(text: str | None, option: str = "--ids") -> list[str] | None:
    """Comma-separated ids from an option (None when the option was not given).

    Raises :class:`UsageError` when the option was given but names nothing.
    """
    if text is None:
        return None
    ids = [part.strip() for part in text.split(",") if part.strip()]
    if not ids:
        raise UsageError(f"{option} takes ids separated by commas, got {text!r}")
    return ids


def parse_int_ids(text: str | None, option: str = "--ids") -> list[int] | None:
    """Comma-separated integer ids (store row ids) from an option; None when not given."""
    ids = parse_ids(text, option)
    if ids is None:
        return None
    try:
        return [int(part) for part in ids]
    except ValueError:
        raise UsageError(f"{option} takes numeric ids separated by commas, got {text!r}") from None


def print_summary(summary: StepSummary, title: str | None = None, *, zeros: bool = True) -> None:
    """A step's outcome: counts by (status, reason), then its figures (without zeros unless
    ``zeros``)."""
    if summary.counts:
        console.print(table(title or summary.step, ["status", "reason", "count"], summary.rows()))
    figures = {k: v for k, v in summary.figures.items() if zeros or v}
    if figures:
        console.print(table(f"{summary.step}: figures", ["figure", "value"], figures.items()))


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Table:
    """A rich table with right-aligned numbers."""
    rows = [list(r) for r in rows]
    out = Table(title=title, title_justify="left")
    for i, name in enumerate(columns):
        numeric = bool(rows) and all(isinstance(r[i], int | float) for r in rows)
        out.add_column(name, justify="right" if numeric else "left")
    for r in rows:
        out.add_row(*("" if v is None else f"{v:,}" if isinstance(v, int) else str(v) for v in r))
    return out
