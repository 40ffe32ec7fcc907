"""What each task of the growth DAG does, as plain functions over JSON (no Airflow import).

The DAG file only wires these together. The run request travels between tasks through XCom as
JSON (ids, window, parameters: never secrets); every task rebuilds its settings from the Airflow
connections (:mod:`dynosaur.connections`) and calls one step of :mod:`dynosaur.pipeline`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from dynosaur.model import Window, parse_utc
from dynosaur.progress import LogProgress

log = logging.getLogger(__name__)

MAX_CHUNKS = 200  # keep mapped task counts far below Airflow's max_map_length (1024)


def chunked(ids: Sequence[int], size: int, max_chunks: int = MAX_CHUNKS) -> list[list[int]]:
    """Split ids into chunks of ``size``, growing the size so there are at most ``max_chunks``."""
    if not ids:
        return []
    size = max(size, math.ceil(len(ids) / max_chunks))
    return [list(ids[i : i + size]) for i in range(0, len(ids), size)]


def run_window(params: Mapping[str, Any], context: Mapping[str, Any]) -> Window | None:
    """The window a run covers: the trigger form's override, else the data interval.

    A manual run without a window or ids covers the last complete UTC day before it was
    triggered; a run with explicit ids and no window covers no window (ids only).
    """
    if params.get("window_start") or params.get("window_end"):
        if not (params.get("window_start") and params.get("window_end")):
            from dynosaur.errors import UsageError

            raise UsageError("give both window_start and window_end, or neither")
        return Window.parse(params["window_start"], params["window_end"])
    start, end = context.get("data_interval_start"), context.get("data_interval_end")
    if start is not None and end is not None and start < end:
        return Window(start.astimezone(UTC), end.astimezone(UTC))
    if params.get("dataset_ids"):
        return None
    run_after = context["dag_run"].run_after.astimezone(UTC)
    return Window.day(run_after - timedelta(days=1))


def run_request_json(context: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON run request for a DAG run, from its params and data interval."""
    params = context["params"]
    ids = sorted({str(i).strip() for i in params.get("dataset_ids") or [] if str(i).strip()})
    window = run_window(params, context)
    if window is not None and not ids:
        run_key = f"window:{window.key()}"
    else:
        # Explicit ids (with or without a window) are tied to this DAG run: clearing it and
        # running again finds the same batch; a new trigger is a new run that adds nothing new.
        run_key = f"dag_run:{context['dag_run'].dag_id}:{context['dag_run'].run_id}"
    return {
        "run_key": run_key,
        "dag_run_id": context["dag_run"].run_id,
        "window_start": window.start.isoformat() if window else None,
        "window_end": window.end.isoformat() if window else None,
        "dataset_ids": ids or None,
        "max_datasets": params.get("max_datasets"),
        "model": params.get("model"),
        "tasks_per_config": params.get("tasks_per_config"),
        "budget_usd": params.get("budget_usd"),
        "dry_run": bool(params.get("dry_run")),
        "chunk_size": int(params.get("chunk_size") or 25),
    }


def _request(run: Mapping[str, Any]):
    from dynosaur.pipeline import RunRequest

    window = (
        Window(parse_utc(run["window_start"]), parse_utc(run["window_end"]))
        if run.get("window_start")
        else None
    )
    return RunRequest(
        window=window,
        dataset_ids=run.get("dataset_ids"),
        max_datasets=run.get("max_datasets"),
        model=run.get("model"),
        tasks_per_config=run.get("tasks_per_config"),
        budget_usd=run.get("budget_usd"),
        dry_run=bool(run.get("dry_run")),
        run_key=run["run_key"],
        dag_run_id=run.get("dag_run_id"),
    )


def _settings_and_store(run: Mapping[str, Any] | None = None):
    """Settings from the Airflow connections (with the run's model and tasks per config on top)
    and the migrated store."""
    from dynosaur.connections import settings_from_airflow
    from dynosaur.store import open_store

    run = run or {}
    overrides = {"llm_model": run.get("model"), "tasks_per_config": run.get("tasks_per_config")}
    settings = settings_from_airflow(**overrides)
    return settings, open_store(settings)


def start_run(context: Mapping[str, Any]) -> dict[str, Any]:
    """Build the run request and open its batch; returns the request with ``batch_id``.

    When the run key's batch is already published (or empty), the request says so
    (``already_done``) and every later step does nothing: re-running an interval adds nothing.
    """
    from dynosaur import batches, pipeline

    run = run_request_json(context)
    settings, engine = _settings_and_store(run)
    done = batches.find_batch(engine, run["run_key"])
    if done is not None and done.finished:
        log.info(
            "run %s is already %s (batch %s): nothing to do", run["run_key"], done.status, done.id
        )
        return {**run, "batch_id": done.id, "already_done": True}
    run["batch_id"] = pipeline.start_run(settings, engine, _request(run))
    log.info("run %s builds batch %s", run["run_key"], run["batch_id"])
    return {**run, "already_done": False}


def _nothing_to_do(run: Mapping[str, Any], step: str) -> bool:
    if run.get("already_done"):
        log.info("%s: run %s was already finished; nothing to do", step, run["run_key"])
        return True
    return False


def discover_chunks(run: Mapping[str, Any]) -> list[list[int]]:
    """Discover, then chunk the dataset rows to collect."""
    from dynosaur import pipeline

    if _nothing_to_do(run, "discover"):
        return []
    settings, engine = _settings_and_store(run)
    ids = pipeline.discover_step(settings, engine, _request(run))
    log.info("%d datasets to collect", len(ids))
    return chunked(ids, run["chunk_size"])


def collect_chunk(run: Mapping[str, Any], chunk: Sequence[int]) -> dict[str, Any]:
    """Collect one chunk; returns its summary as JSON."""
    from dynosaur import pipeline

    settings, engine = _settings_and_store(run)
    return pipeline.collect_step(settings, engine, list(chunk)).to_json()


def generation_chunks(run: Mapping[str, Any]) -> list[list[int]]:
    """Chunk the configs waiting for generation."""
    from dynosaur import pipeline

    if _nothing_to_do(run, "plan generation"):
        return []
    settings, engine = _settings_and_store(run)
    ids = pipeline.generate_queue_step(settings, engine, _request(run))
    log.info("%d configs to generate tasks for", len(ids))
    return chunked(ids, run["chunk_size"])


def generate_chunk(run: Mapping[str, Any], chunk: Sequence[int]) -> dict[str, Any]:
    """Generate tasks for one chunk of configs; returns its summary as JSON."""
    from dynosaur import pipeline

    settings, engine = _settings_and_store(run)
    return pipeline.generate_step(settings, engine, list(chunk), _request(run)).to_json()


def curate_batch(run: Mapping[str, Any]) -> dict[str, Any] | None:
    """Curate everything generated into this run's batch; None when there is nothing to curate
    (the run was already finished, or it is a dry run)."""
    from dynosaur import pipeline

    if _nothing_to_do(run, "curate"):
        return None
    if run.get("dry_run"):
        log.info("dry run: nothing was generated, so nothing is curated or published")
        return None
    settings, engine = _settings_and_store(run)
    return pipeline.curate_step(settings, engine, run["batch_id"]).to_json()


def publish_batch(run: Mapping[str, Any]) -> dict[str, Any] | None:
    """Publish the batch; returns its figures (the asset event's extra), or None when this run
    makes no new version (already finished, a dry run, or a batch without a valid task, which is
    recorded as ``empty``): then no asset event is due."""
    from dynosaur import pipeline

    if _nothing_to_do(run, "publish") or run.get("dry_run"):
        return None
    settings, engine = _settings_and_store(run)
    figures = pipeline.publish_step(settings, engine, run["batch_id"])
    if figures.get("version") is None:
        log.info("batch %s is %s: no new version", run["batch_id"], figures.get("status"))
        return None
    return {**figures, "run_key": run["run_key"], "published_at": datetime.now(UTC).isoformat()}


def fail_batch(run: Mapping[str, Any]) -> None:
    """Mark the batch failed (nothing of it becomes visible)."""
    from dynosaur import batches

    _, engine = _settings_and_store(run)
    batches.fail_batch(engine, run["batch_id"], "a task of the Airflow run failed")


def export_version(version: int | None) -> list[dict[str, Any]]:
    """Export one published version (default: the latest) in every configured format into
    ``<export_dir>/v<N>/``; writing the same version again replaces its files."""
    from dynosaur import batches
    from dynosaur.errors import UsageError
    from dynosaur.export import FORMATS, export

    settings, engine = _settings_and_store()
    if version is None:
        version = batches.latest_version(engine)
        if version is None:
            raise UsageError("nothing is published yet: there is no version to export")
    unknown = sorted(set(settings.export_formats) - set(FORMATS))
    if unknown:
        raise UsageError(
            f"DYNOSAUR_EXPORT_FORMATS has unknown format(s) {', '.join(unknown)}; "
            f"choose from {', '.join(FORMATS)}"
        )
    folder = settings.export_root / f"v{version}"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in settings.export_formats:
        out = folder / "hf" if fmt == "hf" else folder  # a folder: files named after the version
        result = export(settings, engine, fmt=fmt, out=out, version=version, progress=LogProgress())
        log.info("exported version %s as %s to %s", version, fmt, result.path)
        written.append(
            {"format": fmt, "path": str(result.path), "version": version, **result.figures}
        )
    return written


def version_from_events(events: Mapping[Any, Sequence[Any]] | None) -> int | None:
    """The newest version announced by the triggering asset events (None for a manual run).

    Several publishes may be folded into one asset-triggered run; the newest version wins (a
    version includes every earlier one).
    """
    versions = [
        int(extra["version"])
        for asset_events in (events or {}).values()
        for event in asset_events
        if isinstance(extra := getattr(event, "extra", None) or {}, Mapping)
        and extra.get("version") is not None
    ]
    return max(versions) if versions else None


def select_for_version(params: Mapping[str, Any], version: int | None) -> dict[str, Any]:
    """Run the selection the trigger form asks for over ``version`` (default: the latest
    published one); returns the stored selection's name and the step's summary as JSON.

    Selections are stored under a name derived from their inputs: running the same request again
    finds the stored one and computes nothing.
    """
    from dynosaur import batches
    from dynosaur.errors import UsageError

    try:
        from dynosaur import select
    except ImportError as exc:  # torch and friends are the `select` extra
        raise UsageError(
            f"selection needs the 'select' extra (pip install 'dynosaur[select]'): {exc}"
        ) from exc
    settings, engine = _settings_and_store()
    version = params.get("version") or version or batches.latest_version(engine)
    if version is None:
        raise UsageError("nothing is published yet: there is no version to select from")
    method = params.get("method") or "replay"
    common = {"version": int(version), "name": params.get("name"), "seed": params.get("seed") or 0}
    progress = LogProgress()
    if method == "replay":
        result = select.select_replay(
            engine,
            settings,
            tasks=int(params.get("replay_tasks") or 0),
            strategy=params.get("replay_strategy") or "instruction",
            progress=progress,
            **common,
        )
    elif method == "coreset":
        result = select.select_coreset(
            engine,
            settings,
            fraction=None if params.get("count") else params.get("fraction"),
            count=params.get("count"),
            per=params.get("per") or "pool",
            progress=progress,
            **common,
        )
    elif method == "learning_percentage":
        result = select.select_learning_percentage(
            engine,
            settings,
            fraction=None if params.get("count") else params.get("fraction"),
            count=params.get("count"),
            scorer=params.get("scorer_model"),
            epochs=params.get("epochs"),
            progress=progress,
            **common,
        )
    else:
        raise UsageError(
            f"unknown selection method {method!r}; use replay, coreset or learning_percentage"
        )
    summary = result.summary.to_json()
    log.info("selection %s over version %s: %s", result.selection.name, version, summary)
    return {"name": result.selection.name, "version": int(version), "summary": summary}


def export_selection(name: str) -> dict[str, Any]:
    """Export a stored selection as JSONL into ``<export_dir>/selections/``."""
    from dynosaur.export import export

    settings, engine = _settings_and_store()
    folder = settings.export_root / "selections"
    folder.mkdir(parents=True, exist_ok=True)
    result = export(settings, engine, fmt="jsonl", out=folder, selection=name)
    log.info("exported selection %s to %s", name, result.path)
    return {"name": name, "path": str(result.path), **result.figures}


__all__ = ["LogProgress", "chunked"]
