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


# Set by the root command's --verbose: expected failures then also show their traceback.
VERBOSE = False


def reports_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn expected failures into one red line saying what to do, and a non-zero exit status
    instead of a traceback (``dynosaur -v`` shows the traceback too)."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except typer.Exit:
            raise
        except Exception as exc:
            line, code = explain(exc)
            if line is None:
                raise
            if VERBOSE:
                err_console.print_exception(show_locals=False)
            err_console.print(f"[bold red]error:[/] {line}", soft_wrap=True, highlight=False)
            raise typer.Exit(code) from None

    return wrapper


def explain(exc: BaseException) -> tuple[str | None, int]:
    """One line (with what to do) and an exit status for an expected failure (1; 2 for an
    invalid setting); (None, 1) for anything else, which is a bug and keeps its traceback."""
    from dynosaur.errors import LockTimeout, ServiceUnavailable
    from dynosaur.redact import redact

    names = {cls.__name__ for cls in type(exc).__mro__}
    module = type(exc).__module__
    first = redact(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
    if isinstance(exc, ServiceUnavailable):
        what = {"llm": "the LLM endpoint", "hub": "the Hub"}.get(exc.service, exc.service)
        return (
            f"{what} could not be reached: {first}. Nothing is lost: run the same command "
            "again once it is back, and it completes the run.",
            1,
        )
    if isinstance(exc, LockTimeout) or (module.startswith("yoyo") and "LockTimeout" in names):
        return f"{first} (lock timeout: wait for the other process, then run again)", 1
    if isinstance(exc, UsageError):
        return f"{first} (see --help)", 1
    if isinstance(exc, DynosaurError):
        return first, 1
    if isinstance(exc, ValidationError):
        return f"invalid setting: {redact(str(exc))}", 2
    if module.startswith("sqlalchemy") or module.startswith("psycopg2"):
        orig = getattr(exc, "orig", None) or exc
        detail = redact(str(orig).strip().splitlines()[0] if str(orig).strip() else first)
        if "ArgumentError" in names:
            return (
                "DYNOSAUR_DATABASE_URL is not a valid database URL "
                "(expected postgresql://USER@HOST:PORT/DATABASE, with an optional :PASSWORD)",
                1,
            )
        if "OperationalError" in names or "InterfaceError" in names:
            return (
                f"the store could not be reached or was lost: {detail}. Check "
                "DYNOSAUR_DATABASE_URL and that Postgres runs, then run again (finished work "
                "is kept).",
                1,
            )
    if "ConnectError" in names or "APIConnectionError" in names or "ConnectTimeout" in names:
        return f"a service could not be reached ({first}): check the network, then run again", 1
    return None, 1


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment with the command's flags (those not None) on top."""
    return get_settings(**{k: v for k, v in overrides.items() if v is not None})


def store(settings: Settings) -> Engine:
    """The migrated store for ``settings``."""
    from dynosaur.store import open_store

    return open_store(settings)


def setup_logging(verbose: bool) -> None:
    """Log to stderr: INFO with --verbose, WARNING otherwise (and remember --verbose)."""
    global VERBOSE
    VERBOSE = verbose
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from dynosaur.redact import install_log_filter

    install_log_filter()  # no secret in a log line, whichever library writes it


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
