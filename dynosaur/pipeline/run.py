"""One growth run as steps: begin -> discover -> collect -> generate -> curate -> publish.

``dynosaur grow`` calls :func:`grow`, which runs them all in this process; the growth DAG calls
the same functions one per task (collect and generate mapped over chunks). Every step is
idempotent, and a run is named by its run key: running the same key again finishes a run that
crashed and adds nothing to one that is finished (:func:`begin_run` is the one place that says
so). A dry run discovers and collects as usual but only estimates generation, so it curates and
publishes nothing and leaves its batch building for the real run of the same key.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Engine

from dynosaur.errors import UsageError
from dynosaur.model import StepSummary
from dynosaur.pipeline.request import RunRequest
from dynosaur.progress import Progress
from dynosaur.settings import Settings
from dynosaur.store import batches

log = logging.getLogger(__name__)

# Run keys of batches that `dynosaur curate` opens by hand (outside any growth run).
MANUAL = "manual:"


@dataclass(frozen=True)
class RunStart:
    """The outcome of :func:`begin_run`: the run's batch, and whether it is already finished."""

    batch: batches.Batch

    @property
    def batch_id(self) -> int:
        return self.batch.id

    @property
    def already_done(self) -> bool:
        """Published or empty before this run began: every step has nothing to do."""
        return self.batch.finished


def run_settings(settings: Settings, req: RunRequest) -> Settings:
    """Settings with the request's model and tasks per config on top."""
    update: dict[str, Any] = {}
    if req.model:
        update["llm_model"] = req.model
    if req.tasks_per_config:
        update["tasks_per_config"] = req.tasks_per_config
    return settings.model_copy(update=update) if update else settings


def begin_run(engine: Engine, req: RunRequest) -> RunStart:
    """Open the run's batch, or find it again; a finished one (published or empty) is returned
    as it is, and the run has nothing to do."""
    found = batches.find_batch(engine, req.run_key)
    if found is not None and found.finished:
        log.info("run %s is already %s (batch %s)", req.run_key, found.status, found.id)
        return RunStart(found)
    batch = batches.open_batch(engine, req.run_key, window=req.window, dag_run_id=req.dag_run_id)
    log.info("run %s builds batch %s", req.run_key, batch.id)
    return RunStart(batch)


def discover_step(
    settings: Settings, engine: Engine, req: RunRequest, *, progress: Progress | None = None
) -> list[int]:
    """Discover the window's (or the explicit ids') dataset revisions; returns the ``hub_dataset``
    ids to collect now: the new ones and earlier waiting ones (discovered, deferred and due)."""
    from dynosaur import hub
    from dynosaur.store import datasets

    found = hub.discover(
        settings,
        engine,
        window=req.window,
        ids=req.dataset_ids,
        limit=req.max_datasets,
        progress=progress,
    )
    log.info("discover: %s", found.summary.to_json())
    if not req.dry_run and settings.retraction_checks_per_run:
        from dynosaur.retraction import sweep

        log.info("retraction sweep: %s", sweep(settings, engine).to_json())
    return datasets.collect_queue(engine, ids=req.dataset_ids, limit=req.max_datasets)


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
    """Configs waiting for task generation (this run's and earlier runs' leftovers)."""
    from dynosaur import generate

    return generate.generate_queue(run_settings(settings, req), engine)


def generate_step(
    settings: Settings,
    engine: Engine,
    config_ids: list[int],
    req: RunRequest,
    *,
    progress: Progress | None = None,
) -> StepSummary:
    """Propose tasks for these configs (through the ledger, within the run's budget); a dry run
    only estimates tokens and cost."""
    from dynosaur import generate

    return generate.generate(
        run_settings(settings, req),
        engine,
        config_ids,
        run_key=req.run_key,
        budget_usd=req.budget_usd,
        dry_run=req.dry_run,
        progress=progress,
    )


def curate_step(
    settings: Settings,
    engine: Engine,
    req: RunRequest,
    batch_id: int,
    *,
    progress: Progress | None = None,
) -> StepSummary | None:
    """Filter, de-duplicate and build instances for every generated config, into the batch.

    None for a dry run: nothing was generated, so there is nothing to curate.
    """
    from dynosaur.curate import curate

    if req.dry_run:
        log.info("dry run: nothing was generated, so nothing is curated or published")
        return None
    return curate(settings, engine, batch_id, progress=progress)


def publish_step(engine: Engine, req: RunRequest, batch_id: int) -> dict[str, Any] | None:
    """Publish the batch; returns its figures (version, counts, cost), or None for a dry run,
    which publishes nothing."""
    if req.dry_run:
        return None
    return figures(batches.publish_batch(engine, batch_id))


def end_run(engine: Engine, req: RunRequest, message: str) -> batches.Batch | None:
    """The end of a run, however it went (the growth DAG's teardown). A finished run's batch is
    published or empty, so a batch still building means a step failed for good: it is marked
    failed with ``message`` (nothing of it becomes visible, its configs go to a later run). A dry
    run's batch stays building for the real run of its key. Returns the batch (None if the run
    opened none)."""
    if req.dry_run:
        log.info("dry run: its batch stays building for the real run of %s", req.run_key)
        return None
    batch = batches.find_batch(engine, req.run_key)
    if batch is None:
        log.info("run %s opened no batch: nothing to mark failed", req.run_key)
        return None
    if batch.status == "building":
        batch = batches.fail_batch(engine, batch.id, message)
        log.warning("run %s: a step failed, batch %s is marked failed", req.run_key, batch.id)
    return batch


def figures(batch: batches.Batch) -> dict[str, Any]:
    """A batch's figures as JSON: its counts and cost, id, run key, status and version."""
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

    A run key whose batch is already finished returns it at once (``already_done``). If a step
    raises, the batch is marked failed (nothing of it becomes visible) and the error propagates;
    running the same key again rebuilds it. A process killed mid-run leaves the batch building,
    and the next run of the key carries on from what is stored. A dry run returns status
    ``dry_run`` with the estimate in its generate step's figures.
    """
    settings = run_settings(settings, req)
    start = begin_run(engine, req)
    if start.already_done:
        return {**figures(start.batch), "already_done": True, "steps": []}
    steps: list[StepSummary] = []
    try:
        to_collect = discover_step(settings, engine, req, progress=progress)
        steps.append(collect_step(settings, engine, to_collect, progress=progress))
        config_ids = generate_queue_step(settings, engine, req)
        steps.append(generate_step(settings, engine, config_ids, req, progress=progress))
        curated = curate_step(settings, engine, req, start.batch_id, progress=progress)
        if curated is not None:
            steps.append(curated)
        published = publish_step(engine, req, start.batch_id)
    except BaseException as exc:
        batches.fail_batch(engine, start.batch_id, f"{type(exc).__name__}: {exc}")
        raise
    if published is None:  # a dry run: the batch stays building for the real run of this key
        published = {
            "batch_id": start.batch_id,
            "run_key": req.run_key,
            "status": "dry_run",
            "version": None,
        }
    return {**published, "already_done": False, "steps": [s.to_json() for s in steps]}


def manual_batch(
    engine: Engine, *, run_key: str | None, batch_id: int | None, create: bool
) -> batches.Batch:
    """The batch a step run by hand (``dynosaur curate``/``publish``) works on: given by id or
    run key, else the newest manual batch still building, else (``create``) a new manual one."""
    if batch_id is not None:
        return batches.get_batch(engine, batch_id)
    if run_key is not None:
        found = batches.find_batch(engine, run_key)
        if found is None and not create:
            raise UsageError(f"no batch has the run key {run_key!r}")
        return found or batches.open_batch(engine, run_key)
    newest = batches.newest_building(engine, MANUAL)
    if newest is not None:
        return newest
    if not create:
        raise UsageError("no manual batch is building: run dynosaur curate first, or --batch ID")
    return batches.open_batch(engine, MANUAL + datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
