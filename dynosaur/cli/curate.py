"""``dynosaur curate | publish | grow | export | status``: curation, versions and the whole run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from dynosaur.cli.common import (
    console,
    load_settings,
    parse_ids,
    print_summary,
    reports_errors,
    store,
    table,
)
from dynosaur.cli.progress import BarProgress
from dynosaur.model import StepSummary


def register(app: typer.Typer) -> None:
    """Add this module's commands to the top-level ``dynosaur`` command."""
    for command in (curate, publish, grow, export, status):
        app.command()(reports_errors(command))


RUN_KEY = typer.Option(None, "--run-key", help="Work on the batch of this run key.")
BATCH = typer.Option(None, "--batch", min=1, help="Work on the batch with this id.")


def curate(run_key: str | None = RUN_KEY, batch: int | None = BATCH) -> None:
    """Filter, de-duplicate and build instances for every generated config, into a batch.

    The batch is the one named by --batch or --run-key, else the newest building manual batch,
    else a new one. Nothing is visible until `dynosaur publish`.

    Example: dynosaur curate && dynosaur publish
    """
    from dynosaur.curate import curate as curate_batch
    from dynosaur.pipeline import manual_batch

    settings = load_settings()
    engine = store(settings)
    target = manual_batch(engine, run_key=run_key, batch_id=batch, create=True)
    console.print(f"batch {target.id} ({target.run_key})")
    with BarProgress() as progress:
        summary = curate_batch(settings, engine, target.id, progress=progress)
    print_summary(summary)


def publish(run_key: str | None = RUN_KEY, batch: int | None = BATCH) -> None:
    """Publish a curated batch as the next version of the collection (one transaction).

    A batch without any valid task is marked empty and takes no version.

    Example: dynosaur publish --batch 7
    """
    from dynosaur.pipeline import manual_batch
    from dynosaur.store.batches import publish_batch

    settings = load_settings()
    engine = store(settings)
    target = manual_batch(engine, run_key=run_key, batch_id=batch, create=False)
    done = publish_batch(engine, target.id, lock_timeout_s=settings.lock_timeout_s)
    shown = f"version {done.version}" if done.version else f"{done.status} ({done.reason})"
    console.print(f"batch {done.id} ({done.run_key}): {shown}")
    figures = {k: v for k, v in done.figures.items() if not isinstance(v, dict)}
    console.print(table("published", ["figure", "value"], figures.items()))


def grow(
    since: str | None = typer.Option(None, help="Window start (ISO date or time, UTC)."),
    until: str | None = typer.Option(None, help="Window end, exclusive (ISO date or time)."),
    day: str | None = typer.Option(None, help="The UTC day to grow from (instead of a window)."),
    ids: str | None = typer.Option(None, help="Explicit dataset ids, comma-separated."),
    max_datasets: int | None = typer.Option(None, min=1, help="Collect at most N datasets."),
    model: str | None = typer.Option(None, help="LLM model (default DYNOSAUR_LLM_MODEL)."),
    tasks_per_config: int | None = typer.Option(None, min=1, max=10, help="Tasks per config."),
    budget: float | None = typer.Option(None, min=0, help="LLM spend cap for this run (USD)."),
    dry_run: bool = typer.Option(
        False,
        help="Discover and collect as usual (those rows are stored), then only estimate the "
        "LLM's tokens and cost: no LLM call, nothing curated or published.",
    ),
    run_key: str | None = typer.Option(
        None, help="Identity of the run (default: the window and/or the ids)."
    ),
) -> None:
    """The whole growth run in one process: discover, collect, generate, curate, publish.

    Without a window or ids it covers the previous UTC day, like the daily Airflow run. The run
    key (default: the window and/or the ids, named as the growth DAG names them) makes it
    idempotent: growing the same window or ids again adds nothing and finishes a run that crashed.

    --dry-run discovers and collects as usual (dataset and config rows are stored, like any
    run's), then estimates the tokens and cost of generation without calling the LLM; it curates
    and publishes nothing, and its batch stays building for the real run of the same key.

    Example: dynosaur grow --since 2024-05-01 --until 2024-05-02
    """
    from dynosaur.pipeline import grow as grow_run
    from dynosaur.pipeline import request_for

    request = request_for(
        since=since,
        until=until,
        day=day,
        ids=parse_ids(ids),
        max_datasets=max_datasets,
        model=model,
        tasks_per_config=tasks_per_config,
        budget_usd=budget,
        dry_run=dry_run,
        run_key=run_key,
    )  # checked before the store is opened: bad input fails at once
    settings = load_settings()
    engine = store(settings)
    console.print(f"run {request.run_key}")
    with BarProgress() as progress:
        result = grow_run(settings, engine, request, progress=progress)
    for step in result.get("steps", []):
        print_summary(StepSummary.from_json(step))
    shown = {k: v for k, v in result.items() if k != "steps" and not isinstance(v, dict | list)}
    console.print(table("run", ["figure", "value"], shown.items()))
    for kind, items in (result.get("adopted") or {}).items():  # leftovers of earlier runs
        if items:
            console.print(f"adopted {len(items)} {kind} left by earlier runs: {', '.join(items)}")
    for released in result.get("released") or []:
        console.print(f"released stale batch {released}: its work went back to the queues")


def export(
    version: int | None = typer.Option(None, "--version", "-V", min=1, help="Version N."),
    selection: str | None = typer.Option(None, help="Export this stored selection instead."),
    fmt: str = typer.Option("jsonl", "--format", "-f", help="jsonl, parquet or hf."),
    out: Path | None = typer.Option(
        None, help="File or folder to write (hf: a folder). Default: dynosaur-vN.* here."
    ),
    push_to_hub: str | None = typer.Option(
        None, help="Also upload to this Hub dataset repo (needs DYNOSAUR_HUB_TOKEN)."
    ),
    licenses: str | None = typer.Option(
        None,
        help="Only these license classes (comma list of permissive, share-alike, "
        "non-commercial, no-derivatives, unknown); the card states their terms.",
    ),
    delta: bool = typer.Option(False, help="Only the rows version N added."),
) -> None:
    """Export version N of the collection (default: the latest) or a stored selection.

    JSONL has the original Dynosaur's fields (instruction, input, output, license, website,
    taskname); hf writes a `datasets` Dataset folder with a dataset card. Streams: memory does
    not grow with the size of the export.

    Example: dynosaur export --version 3 --format parquet --out dynosaur-v3.parquet
    Example: dynosaur export --licenses permissive,share-alike
    """
    from dynosaur.export import export as run_export

    settings = load_settings()
    engine = store(settings)
    with BarProgress() as progress:
        result = run_export(
            settings,
            engine,
            fmt=fmt,
            out=out,
            version=version,
            selection=selection,
            push_to_hub=push_to_hub,
            progress=progress,
            licenses=licenses,
            delta=delta,
        )
    console.print(f"wrote {result.source} to {result.path}", soft_wrap=True)
    figures: dict[str, Any] = {
        k: v for k, v in result.figures.items() if k not in ("licenses", "license_classes")
    }
    if result.pushed_to:
        figures["pushed to"] = result.pushed_to
    console.print(table("export", ["figure", "value"], figures.items()))
    by_license = result.figures.get("licenses", {})
    console.print(table("licenses", ["license", "instances"], by_license.items()))


def status(limit: int = typer.Option(10, min=1, help="Batches to show, newest first.")) -> None:
    """Show the latest version, the newest batches and the work waiting in each step.

    Example: dynosaur status
    """
    from dynosaur.pipeline import status as collection_status

    settings = load_settings()
    now = collection_status(store(settings), batches_shown=limit, lease_s=settings.run_lease_s)
    latest = now.latest_version
    console.print(f"latest version: {latest if latest is not None else 'none published yet'}")
    columns = ["batch", "version", "status", "run key", "datasets", "configs", "valid", "rejected"]
    console.print(
        table(
            "batches",
            [*columns, "instances", "cost USD"],
            [
                (
                    *(b.batch_id, b.version, b.status, b.run_key, b.datasets, b.configs),
                    *(b.tasks_valid, b.tasks_rejected, b.instances, f"{b.cost_usd:.4f}"),
                )
                for b in now.batches
            ],
        )
    )
    console.print(
        table("store", ["rows", "status", "count"], [(r.what, r.status, r.count) for r in now.rows])
    )
    for stale in now.stale:
        console.print(
            f"[yellow]stale:[/] batch {stale.id} ({stale.run_key}) is building without a live "
            f"process (holder {stale.holder or '-'}, last heartbeat "
            f"{stale.heartbeat_at or '-'}): the next run of its key adopts it, any other run "
            "releases it"
        )
