"""The growth DAG's task bodies: each builds what it needs from the Airflow context or the
previous task's XCom and calls one step of :mod:`dynosaur.pipeline`.

The run travels between tasks through XCom as JSON: the run request (window, ids, parameters;
never secrets), the batch id, whether the run was already finished, and the chunk size. Every
task rebuilds its settings from the Airflow connections (:mod:`dynosaur.airflow.connections`).
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar

from dynosaur.airflow.connections import settings_and_store
from dynosaur.errors import UsageError
from dynosaur.pipeline.request import RunRequest, request_from_trigger

log = logging.getLogger(__name__)

MAX_CHUNKS = 200  # keep mapped task counts far below Airflow's max_map_length (1024)

Run = Mapping[str, Any]  # the XCom of `start`: request, batch_id, already_done, chunk_size


P = ParamSpec("P")
R = TypeVar("R")


def no_retry_on_usage(func: Callable[P, R]) -> Callable[P, R]:
    """A :class:`UsageError` (bad window, dates, ids in the trigger form or REST conf) fails the
    task at once with its message: retrying cannot fix the input."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except UsageError as exc:
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(f"invalid run request: {exc}") from None

    return wrapper


@contextmanager
def _beating(run: Run) -> Iterator[tuple[Any, Any]]:
    """Settings and store for a task of the run, with the batch's heartbeat kept fresh while
    the task works (so no other run takes the batch over meanwhile)."""
    from dynosaur.pipeline.run import heartbeat

    settings, engine = settings_and_store()
    with heartbeat(engine, run["batch_id"], _request(run), settings.run_lease_s):
        yield settings, engine


def chunked(ids: Sequence[int], size: int, max_chunks: int = MAX_CHUNKS) -> list[list[int]]:
    """Split ids into chunks of ``size``, growing the size so there are at most ``max_chunks``."""
    if not ids:
        return []
    size = max(size, math.ceil(len(ids) / max_chunks))
    return [list(ids[i : i + size]) for i in range(0, len(ids), size)]


def request_from_context(context: Mapping[str, Any]) -> RunRequest:
    """The run request of a growth DAG run: its trigger form, data interval and run."""
    dag_run = context["dag_run"]
    return request_from_trigger(
        context["params"],
        interval_start=context.get("data_interval_start"),
        interval_end=context.get("data_interval_end"),
        run_after=dag_run.run_after,
        dag_run_id=dag_run.run_id,
    )


def _request(run: Run) -> RunRequest:
    return RunRequest.from_json(run["request"])


def _nothing_to_do(run: Run, step: str) -> bool:
    if run["already_done"]:
        log.info("%s: run %s was already finished; nothing to do", step, run["request"]["run_key"])
        return True
    return False


@no_retry_on_usage
def start_run(context: Mapping[str, Any]) -> dict[str, Any]:
    """Build the run request and open the run's batch (or find it finished: then every later
    task does nothing, and re-running an interval adds nothing). An invalid request fails the
    task at once, without retries."""
    from dynosaur import pipeline

    req = request_from_context(context)
    settings, engine = settings_and_store()
    started = pipeline.begin_run(engine, req, lease_s=settings.run_lease_s)
    return {
        "request": req.to_json(),
        "batch_id": started.batch_id,
        "already_done": started.already_done,
        "chunk_size": int(context["params"]["chunk_size"]),
    }


def discover_chunks(run: Run) -> list[list[int]]:
    """Discover, then chunk the dataset rows to collect."""
    from dynosaur import pipeline

    if _nothing_to_do(run, "discover"):
        return []
    with _beating(run) as (settings, engine):
        ids = pipeline.discover_step(settings, engine, _request(run), batch_id=run["batch_id"])
    log.info("%d datasets to collect", len(ids))
    return chunked(ids, run["chunk_size"])


def collect_chunk(run: Run, chunk: Sequence[int]) -> dict[str, Any]:
    """Collect one chunk; returns its summary as JSON."""
    from dynosaur import pipeline

    with _beating(run) as (settings, engine):
        return pipeline.collect_step(settings, engine, list(chunk)).to_json()


def generation_chunks(run: Run) -> list[list[int]]:
    """Chunk the configs waiting for generation."""
    from dynosaur import pipeline

    if _nothing_to_do(run, "plan_generation"):
        return []
    with _beating(run) as (settings, engine):
        ids = pipeline.generate_queue_step(
            settings, engine, _request(run), batch_id=run["batch_id"]
        )
    log.info("%d configs to generate tasks for", len(ids))
    return chunked(ids, run["chunk_size"])


def generate_chunk(run: Run, chunk: Sequence[int]) -> dict[str, Any]:
    """Generate tasks for one chunk of configs; returns its summary as JSON."""
    from dynosaur import pipeline

    with _beating(run) as (settings, engine):
        return pipeline.generate_step(settings, engine, list(chunk), _request(run)).to_json()


def curate_batch(run: Run) -> dict[str, Any] | None:
    """Curate everything generated into this run's batch; None when there is nothing to curate
    (the run was already finished, or it is a dry run)."""
    from dynosaur import pipeline

    if _nothing_to_do(run, "curate"):
        return None
    with _beating(run) as (settings, engine):
        summary = pipeline.curate_step(settings, engine, _request(run), run["batch_id"])
    return summary.to_json() if summary is not None else None


def publish_batch(run: Run) -> dict[str, Any] | None:
    """Publish the batch; returns its figures (the asset event's extra), or None when this run
    makes no new version (already finished, a dry run, or a batch without a valid task, which is
    recorded as ``empty``): then no asset event is due."""
    from dynosaur import pipeline

    if _nothing_to_do(run, "publish"):
        return None
    settings, engine = settings_and_store()
    figures = pipeline.publish_step(
        engine, _request(run), run["batch_id"], lock_timeout_s=settings.lock_timeout_s
    )
    if figures is None or figures.get("version") is None:
        log.info("batch %s publishes no new version", run["batch_id"])
        return None
    return {**figures, "published_at": datetime.now(UTC).isoformat()}


def mark_failed(context: Mapping[str, Any]) -> None:
    """The run's teardown, after every other task ended however: marks the batch failed when a
    step failed for good (:func:`dynosaur.pipeline.end_run`). It works from the run's context
    alone, not from ``start``'s XCom, so it also runs when ``start`` failed."""
    from dynosaur import pipeline

    try:
        req = request_from_context(context)
    except UsageError as exc:
        log.info("the run's trigger form is invalid (%s): it opened no batch", exc)
        return
    _, engine = settings_and_store()
    pipeline.end_run(engine, req, f"a task of Airflow run {context['dag_run'].run_id} failed")
