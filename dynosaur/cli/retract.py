"""``dynosaur retract``: withdraw a source dataset's instances from the next version on, by hand
or by rechecking the collection's sources on the Hub."""

from __future__ import annotations

import typer

from dynosaur.cli.common import console, load_settings, reports_errors, store, table
from dynosaur.errors import UsageError


def register(app: typer.Typer) -> None:
    """Add ``retract`` to the top-level ``dynosaur`` command."""
    app.command(name="retract")(reports_errors(retract_command))


def retract_command(
    dataset: str | None = typer.Argument(
        None, help="Hub dataset id to retract by hand (e.g. org/name)."
    ),
    note: str | None = typer.Option(
        None, "--note", help="Why, in your words (stored with the retraction)."
    ),
    sweep: bool = typer.Option(
        False,
        "--sweep",
        help="Recheck sources of the collection on the Hub instead (deleted, private, gated, "
        "relicensed), the longest unchecked first.",
    ),
    limit: int | None = typer.Option(
        None, "--limit", min=1, help="With --sweep: at most N sources (default: the setting)."
    ),
    show: bool = typer.Option(False, "--list", help="List the retractions in force and exit."),
) -> None:
    """Withdraw a source dataset's instances from the next version on.

    Published versions keep their rows (collection_at(N) below the retraction's version); the
    next version, the collection view and every later export leave them out.

    Examples:

      dynosaur retract org/name --note "author asked us to"

      dynosaur retract --sweep --limit 200

      dynosaur retract --list
    """
    from dynosaur import retraction
    from dynosaur.store import retractions

    if sum((dataset is not None, sweep, show)) != 1:
        raise UsageError("give a DATASET, or --sweep, or --list")
    settings = load_settings()
    engine = store(settings)
    if dataset is not None:
        done = retraction.retract(engine, dataset, note)
        if done is None:
            console.print(f"{dataset} is already retracted; nothing changed")
        else:
            console.print(
                f"{done.dataset_id} retracted from version {done.from_version} on ({done.reason})"
            )
        return
    if sweep:
        result = retraction.sweep(settings, engine, limit=limit)
        console.print(
            f"rechecked {result.checked} sources: {len(result.retracted)} retracted, "
            f"{len(result.unreachable)} not reachable (due again next time)"
        )
    rows = [
        (r.dataset_id, r.reason, r.from_version, r.instances, r.detected_at.date().isoformat())
        for r in retractions.retractions(engine)
    ]
    console.print(
        table(
            "retractions",
            ["dataset", "reason", "from version", "instances", "detected"],
            rows,
        )
    )
