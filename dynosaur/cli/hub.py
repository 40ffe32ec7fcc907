"""``dynosaur discover`` and ``dynosaur collect``: the Hub as a source, step by step."""

from __future__ import annotations

import typer

from dynosaur.cli.common import (
    console,
    err_console,
    load_settings,
    parse_ids,
    print_summary,
    reports_errors,
    store,
)
from dynosaur.cli.progress import BarProgress
from dynosaur.errors import UsageError
from dynosaur.model import Window


def register(app: typer.Typer) -> None:
    """Add ``discover`` and ``collect`` to the top-level ``dynosaur`` command."""
    app.command(name="discover")(reports_errors(discover_command))
    app.command(name="collect")(reports_errors(collect_command))


def discover_command(
    since: str | None = typer.Option(
        None, "--since", help="Window start (ISO date or datetime, UTC), inclusive."
    ),
    until: str | None = typer.Option(
        None, "--until", help="Window end (ISO date or datetime, UTC), exclusive."
    ),
    ids: str | None = typer.Option(
        None, "--ids", help="Hub dataset ids, comma-separated: skips the listing."
    ),
    limit: int | None = typer.Option(None, "--limit", min=1, help="At most N datasets, newest."),
    created_only: bool = typer.Option(
        False, "--created-only", help="Only datasets created in the window, not modified ones."
    ),
) -> None:
    """Find dataset revisions created (or modified) on the Hub in a window, or given by id.

    The listing is read newest first and abandoned once it passes --since, so a day's window
    costs a day of datasets. A revision seen before is a no-op; a new sha is a new row.

    Example: dynosaur discover --since 2024-03-01 --until 2024-03-02
    Example: dynosaur discover --ids squad,glue
    """
    from dynosaur.hub import discover

    wanted = parse_ids(ids)
    if wanted is None and not (since and until):
        raise UsageError("give --since and --until, or --ids")
    if wanted is not None and (since or until):
        raise UsageError("give either a window (--since/--until) or --ids, not both")
    window = Window.parse(since, until) if since and until else None
    settings = load_settings()
    engine = store(settings)
    with BarProgress() as progress:
        result = discover(
            settings,
            engine,
            window=window,
            ids=wanted,
            limit=limit,
            include_modified=not created_only,
            progress=progress,
        )
    print_summary(result.summary, "discover: dataset revisions", zeros=False)
    for problem in result.problems:
        err_console.print(f"[yellow]not added:[/] {problem}")
    console.print(f"{len(result.new_ids)} new of {result.seen} seen; run `dynosaur collect` next")


def collect_command(
    ids: str | None = typer.Option(
        None, "--ids", help="Only these Hub dataset ids (comma-separated), deferred ones at once."
    ),
    limit: int | None = typer.Option(None, "--limit", min=1, help="At most N datasets."),
) -> None:
    """Collect cards, configs, features and sample rows of the discovered datasets.

    Takes datasets waiting in the store: discovered ones, and deferred ones whose next attempt
    is due. Each ends collected, skipped, deferred or failed, with a reason.

    Example: dynosaur collect --limit 50
    Example: dynosaur collect --ids squad
    """
    from dynosaur.hub import collect
    from dynosaur.store.datasets import collect_queue

    settings = load_settings()
    engine = store(settings)
    queue = collect_queue(engine, ids=parse_ids(ids), limit=limit)
    if not queue:
        console.print("no dataset is waiting to be collected")
        return
    with BarProgress() as progress:
        summary = collect(settings, engine, queue, progress=progress)
    print_summary(summary, "collect: datasets", zeros=False)
