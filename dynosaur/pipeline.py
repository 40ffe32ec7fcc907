"""One growth run as steps: start -> discover -> collect -> generate -> curate -> publish.

The Airflow DAG calls the steps one by one (each in its own task, collect and generate mapped over
chunks); ``dynosaur grow`` calls :func:`grow`, which runs them all in one process. Every step is
idempotent, and the run is identified by its run key: running the same key again finishes a run
that crashed and adds nothing to one that was published.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine

from dynosaur import batches
from dynosaur.errors import UsageError
from dynosaur.model import StepSummary, Window
from dynosaur.progress import Progress
from dynosaur.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class RunRequest:
    """What one growth run covers and how (the Airflow trigger form's fields)."""

    window: Window | None
    dataset_ids: list[str] | None
    max_datasets: int | None
    model: str | None
    tasks_per_config: int | None
    budget_usd: float | None
    dry_run: bool
    run_key: str
    dag_run_id: str | None = None


def run_key_for(window: Window | None, dataset_ids: list[str] | None) -> str:
    """The default run key: the window (as the daily DAG names it) and/or the explicit ids."""
    parts = []
    if window is not None:
        parts.append(f"window:{window.key()}")
    if dataset_ids:
        ids = ",".join(sorted(set(dataset_ids)))
        if len(ids) > 200:
            ids = "sha256:" + hashlib.sha256(ids.encode()).hexdigest()
        parts.append(f"ids:{ids}")
    if not parts:
        raise UsageError("a run needs a window or dataset ids")
    return "|".join(parts)


def request_for(
    *,
    since: str | None = None,
    until: str | None = None,
    day: str | None = None,
    ids: list[str] | None = None,
    max_datasets: int | None = None,
    model: str | None = None,
    tasks_per_config: int | None = None,
    budget_usd: float | None = None,
    dry_run: bool = False,
    run_key: str | None = None,
    now: datetime | None = None,
) -> RunRequest:
    """A run request from command-line style arguments.

    ``since``/``until`` give a window, ``day`` a whole UTC day; with neither and no ids the run
    covers the previous UTC day (what the daily schedule does).
    """
    if (since is None) != (until is None):
        raise UsageError("give both --since and --until, or neither")
    if day is not None and since is not None:
        raise UsageError("give --day or --since/--until, not both")
    window: Window | None = None
    if since is not None and until is not None:
        window = Window.parse(since, until)
    elif day is not None:
        window = Window.day(day)
    elif not ids:
        window = Window.day((now or datetime.now(UTC)) - timedelta(days=1))
    return RunRequest(
        window=window,
        dataset_ids=ids or None,
        max_datasets=max_datasets,
        model=model,
        tasks_per_config=tasks_per_config,
        budget_usd=budget_usd,
        dry_run=dry_run,
        run_key=run_key or run_key_for(window, ids),
    )


def _run_settings(settings: Settings, req: RunRequest) -> Settings:
    """Settings with the request's model and tasks per config on top."""
    update: dict[str, Any] = {}
    if req.model:
        update["llm_model"] = req.model
    if req.tasks_per_config:
        update["tasks_per_config"] = req.tasks_per_config
    return settings.model_copy(update=update) if update else settings


def start_run(settings: Settings, engine: Engine, req: RunRequest) -> int:
    """Open (or find again) the run's batch; returns its id."""
    del settings  # part of the step signature
    batch = batches.open_batch(engine, req.run_key, window=req.window, dag_run_id=req.dag_run_id)
    log.info("run %s: batch %s (%s)", req.run_key, batch.id, batch.status)
    return batch.id


def discover_step(
    settings: Settings, engine: Engine, req: RunRequest, *, progress: Progress | None = None
) -> list[int]:
    """Discover the window's (or the explicit ids') dataset revisions; returns the ``hub_dataset``
    ids to collect now: the new ones and earlier waiting ones (discovered, deferred and due)."""
    from dynosaur import hub

    found = hub.discover(
        settings,
        engine,
        window=req.window,
        ids=req.dataset_ids,
        limit=req.max_datasets,
        progress=progress,
    )
    log.info("discover: %s", found.summary.to_json())
    return hub.collect_queue(settings, engine, ids=req.dataset_ids, limit=req.max_datasets)


def collect_step(
    settings: Settings,
    engine: Engine,
    dataset_row_ids: list[int],
    *,
    progress: Progress | None = None,
) -> StepSummary:
    """Collect cards, configs, features and sample rows of these datasets."""
    from dynosaur import hub

    return hub.collect(settings, engine, dataset_row_ids, progress=progress)


def generate_queue_step(settings: Settings, engine: Engine, req: RunRequest) -> list[int]:
    """Configs waiting for task generation."""
    from dynosaur import generate

    return generate.generate_queue(_run_settings(settings, req), engine)


def generate_step(
    settings: Settings,
    engine: Engine,
    config_ids: list[int],
    req: RunRequest,
    *,
    progress: Progress | None = None,
) -> StepSummary:
    """Propose tasks for these configs (through the ledger, within the run's budget)."""
    from dynosaur import generate

    return generate.generate(
        _run_settings(settings, req),
        engine,
        config_ids,
        run_key=req.run_key,
        budget_usd=req.budget_usd,
        dry_run=req.dry_run,
        progress=progress,
    )


def curate_step(
    settings: Settings, engine: Engine, batch_id: int, *, progress: Progress | None = None
) -> StepSummary:
    """Filter, de-duplicate and build instances for every generated config, into the batch."""
    from dynosaur.curate import curate

    return curate(settings, engine, batch_id, progress=progress)


def publish_step(settings: Settings, engine: Engine, batch_id: int) -> dict[str, Any]:
    """Publish the batch; returns its figures as JSON (version, counts, cost)."""
    del settings  # part of the step signature
    return _figures(batches.publish_batch(engine, batch_id))


def _figures(batch: batches.Batch) -> dict[str, Any]:
    return {
        **batch.figures,
        "batch_id": batch.id,
        "run_key": batch.run_key,
        "status": batch.status,
        "version": batch.version,
    }


def grow(
    settings: Settings, engine: Engine, req: RunRequest, progress: Progress | None = None
) -> dict[str, Any]:
    """The whole run in this process; returns the batch's figures plus each step's summary.

    A run key whose batch is already published (or empty) returns it at once. If a step raises,
    the batch is marked failed (nothing of it becomes visible) and the error propagates; running
    the same key again rebuilds it. A process killed mid-run leaves the batch building, and the
    next run of the key carries on from what is stored.
    """
    done = batches.find_batch(engine, req.run_key)
    if done is not None and done.finished:
        log.info("run %s is already %s", req.run_key, done.status)
        return {**_figures(done), "already_done": True, "steps": []}
    batch_id = start_run(settings, engine, req)
    steps: list[StepSummary] = []
    try:
        to_collect = discover_step(settings, engine, req, progress=progress)
        steps.append(collect_step(settings, engine, to_collect, progress=progress))
        config_ids = generate_queue_step(settings, engine, req)
        steps.append(generate_step(settings, engine, config_ids, req, progress=progress))
        if req.dry_run:
            # Nothing was generated: leave the batch building for the real run of this key.
            return {
                "batch_id": batch_id,
                "run_key": req.run_key,
                "status": "dry_run",
                "version": None,
                "steps": [s.to_json() for s in steps],
            }
        steps.append(curate_step(settings, engine, batch_id, progress=progress))
        figures = publish_step(settings, engine, batch_id)
    except BaseException as exc:
        batches.fail_batch(engine, batch_id, f"{type(exc).__name__}: {exc}")
        raise
    return {**figures, "already_done": False, "steps": [s.to_json() for s in steps]}
