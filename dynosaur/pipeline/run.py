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
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Engine

from dynosaur.errors import ServiceUnavailable, UsageError
from dynosaur.model import StepSummary
from dynosaur.pipeline.request import RunRequest
from dynosaur.progress import Progress
from dynosaur.reasons import Reason
from dynosaur.settings import Settings
from dynosaur.store import batches

log = logging.getLogger(__name__)

# Run keys of batches that `dynosaur curate` opens by hand (outside any growth run).
MANUAL = "manual:"
# LLM outcomes that mean the endpoint could not be reached (the run could not do its work).
UNREACHABLE = {Reason.LLM_CONNECTION_ERROR.value, Reason.LLM_TIMEOUT.value}
# Collect outcomes that mean the Hub could not answer (errors, 5xx or 429 after the retries).
HUB_UNREACHABLE = {Reason.HUB_ERROR.value, Reason.RATE_LIMITED.value}
# What each service is called in the one line a failed run prints and in its batch's message.
SERVICE_NAMES = {"llm": "the LLM endpoint", "hub": "the Hub"}
# Exception class names (anywhere in the class's MRO) of a request that got no answer at all.
_NO_ANSWER = {"ConnectError", "ConnectTimeout", "ReadTimeout", "TimeoutException",
              "NetworkError", "RemoteProtocolError", "ConnectionError"}  # fmt: skip
DEFAULT_LEASE_S = 600.0


def holder_for(req: RunRequest) -> str:
    """Who builds the run's batch: the Airflow run (every task of it alike), else this process
    (``pid:<host>:<pid>:<start time>``, so that a dead process is recognised on its host)."""
    if req.dag_run_id:
        return f"airflow:{req.dag_run_id}"
    pid = os.getpid()
    return f"pid:{socket.gethostname()}:{pid}:{_started(pid)}"


def _started(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux), '' where unknown."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def holder_gone(holder: str | None) -> bool:
    """True when ``holder`` is a process of this host that no longer runs (its pid is gone or
    now belongs to a later process): a fact, not a guess from the clock. Holders elsewhere
    (another host, an Airflow run) are judged by their heartbeat alone."""
    if not holder or not holder.startswith("pid:"):
        return False
    parts = holder.split(":")
    if len(parts) != 4 or parts[1] != socket.gethostname() or not parts[2].isdigit():
        return False
    pid, started = int(parts[2]), parts[3]
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass
    return bool(started) and _started(pid) != started


@dataclass(frozen=True)
class RunStart:
    """The outcome of :func:`begin_run`: the run's batch, whether it is already finished, and
    what it found of other runs (stale batches it released, a stale holder it replaced)."""

    batch: batches.Batch
    released: list[batches.Batch] = field(default_factory=list)
    took_over_from: str | None = None

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


def begin_run(
    engine: Engine,
    req: RunRequest,
    *,
    lease_s: float = DEFAULT_LEASE_S,
    holder: str | None = None,
) -> RunStart:
    """Open the run's batch, or find it again; a finished one (published or empty) is returned
    as it is, and the run has nothing to do.

    A batch found building is held by this run from now on: when its holder is this run, or its
    holder's heartbeat is older than ``lease_s`` (the process is gone: adopted). While another
    live process holds it, raises :class:`~dynosaur.errors.RunInProgress`. Stale batches of other
    keys are released (marked failed ``run_abandoned``), so their work goes back to the queues.
    """
    holder = holder or holder_for(req)
    found = batches.find_batch(engine, req.run_key)
    if found is not None and found.finished:
        log.info("run %s is already %s (batch %s)", req.run_key, found.status, found.id)
        return RunStart(found)
    batch = batches.open_batch(
        engine, req.run_key, window=req.window, dag_run_id=req.dag_run_id, holder=holder
    )
    took_over = None
    if batch.status == "building" and batch.holder != holder:
        took_over = batch.holder
        batch = batches.adopt_or_refuse(
            engine, batch.id, holder, lease_s, holder_gone=holder_gone(batch.holder)
        )
        log.warning("run %s: took over batch %s from %s (no heartbeat)", req.run_key, batch.id,
                    took_over)  # fmt: skip
    gone = [b.holder for b in batches.building(engine) if b.holder and holder_gone(b.holder)]
    released = batches.release_stale(engine, lease_s, keep=batch.id, gone_holders=gone)
    for other in released:
        log.warning("released stale batch %s (run %s): %s", other.id, other.run_key, other.message)
    log.info("run %s builds batch %s", req.run_key, batch.id)
    return RunStart(batch, released, took_over)


class Heartbeat:
    """Keeps a batch's heartbeat fresh from a background thread while a run works on it (every
    third of the lease); a lost database only skips beats. Use as a context manager."""

    def __init__(self, engine: Engine, batch_id: int, holder: str, lease_s: float) -> None:
        self.engine, self.batch_id, self.holder = engine, batch_id, holder
        self.interval = max(lease_s / 3.0, 0.05)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dynosaur-heartbeat", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                batches.beat(self.engine, self.batch_id, self.holder)
            except Exception as exc:  # the database may be gone for a while: beat again later
                log.warning("heartbeat of batch %s failed: %s", self.batch_id, exc)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@contextmanager
def heartbeat(engine: Engine, batch_id: int, req: RunRequest, lease_s: float) -> Iterator[None]:
    """:class:`Heartbeat` for the run ``req`` (its holder) on ``batch_id``."""
    with Heartbeat(engine, batch_id, holder_for(req), lease_s):
        yield


def _batch_of(engine: Engine, req: RunRequest, batch_id: int | None) -> int:
    if batch_id is not None:
        return batch_id
    found = batches.find_batch(engine, req.run_key)
    if found is None:
        raise UsageError(f"run {req.run_key} has no batch: begin the run first")
    return found.id


def discover_step(
    settings: Settings,
    engine: Engine,
    req: RunRequest,
    *,
    batch_id: int | None = None,
    progress: Progress | None = None,
) -> list[int]:
    """Discover the window's (or the explicit ids') dataset revisions for the run's batch, which
    owns them from birth; take over due leftovers no live run holds (recorded in
    ``batch.adopted``). Returns the ``hub_dataset`` ids the batch collects now. Explicit ids that
    are invalid or unknown to the Hub are stored as rejected rows (``requested_dataset``)."""
    from dynosaur import hub
    from dynosaur.hub.client import check_dataset_id
    from dynosaur.store import datasets

    batch_id = _batch_of(engine, req, batch_id)
    ids = req.dataset_ids or []
    invalid = {i: problem for i in ids if (problem := check_dataset_id(i)) is not None}
    valid = [i for i in ids if i not in invalid]
    found = None
    if req.window is not None or valid:
        try:
            with datasets.owned_by(batch_id), hub_unreachable(settings):
                found = hub.discover(
                    settings,
                    engine,
                    window=req.window,
                    ids=valid or None,
                    limit=req.max_datasets,
                    progress=progress,
                )
        except ServiceUnavailable as exc:
            note_unreachable(engine, batch_id, exc.service)
            raise
    note_unreachable(engine, batch_id, None)
    if found is not None:
        log.info("discover: %s", found.summary.to_json())
    stored = datasets.stored_dataset_ids(engine, valid)
    problems = {p.split(":", 1)[0].strip("'\" "): p for p in (found.problems if found else [])}
    rejected = [(i, Reason.INVALID_ID.value, f"{i!r}: {why}") for i, why in invalid.items()]
    rejected += [
        (i, Reason.NOT_FOUND.value, problems.get(i, f"{i}: the Hub does not know this dataset"))
        for i in valid
        if i not in stored
    ]
    datasets.record_rejected_ids(engine, batch_id, rejected)
    for _, reason, message in rejected:
        log.warning("dataset id not taken (%s): %s", reason, message)
    datasets.claim_requested(engine, batch_id, valid, settings.run_lease_s)
    adopted = datasets.adopt_leftovers(engine, batch_id, settings.run_lease_s)
    if adopted:
        batches.note_adopted(engine, batch_id, {"datasets": adopted.datasets})
        log.warning("run %s adopted %d waiting dataset(s) of earlier runs: %s", req.run_key,
                    len(adopted.datasets), ", ".join(adopted.datasets[:20]))  # fmt: skip
    if not req.dry_run and settings.retraction_checks_per_run:
        from dynosaur.retraction import sweep

        log.info("retraction sweep: %s", sweep(settings, engine).to_json())
    if not req.dry_run and settings.benchmarks:
        from dynosaur.decontam import index

        # New benchmark revisions only: about two Hub calls per listed benchmark otherwise.
        log.info("benchmarks: %s", index(settings, engine).to_json())
    return datasets.owned_collect_queue(engine, batch_id, limit=req.max_datasets)


def collect_step(
    settings: Settings,
    engine: Engine,
    dataset_row_ids: list[int],
    *,
    progress: Progress | None = None,
) -> StepSummary:
    """Collect cards, configs, features and sample rows of these datasets.

    Datasets the Hub could not answer for (errors, 5xx or 429 after the retries) are deferred.
    When that is every dataset of the step (the Hub is down, not one dataset broken), the step
    raises :class:`ServiceUnavailable` (service ``hub``) after recording them: the run must not
    look done (a re-run of its key collects them at once). A few deferred among collected ones
    are retryable leftovers that a later run adopts when they are due."""
    from dynosaur import hub

    with hub_unreachable(settings):
        summary = hub.collect(settings, engine, dataset_row_ids, progress=progress)
    unreachable = sum(
        n
        for (status, reason), n in summary.counts.items()
        if status == "deferred" and reason in HUB_UNREACHABLE
    )
    if unreachable and unreachable == sum(summary.counts.values()):
        raise ServiceUnavailable(
            f"the Hub could not answer for {unreachable} dataset(s) (deferred)",
            service="hub",
            deferred=unreachable,
        )
    return summary


def no_answer(exc: BaseException) -> bool:
    """True when ``exc`` (or what it was raised from) is a request that got no answer at all:
    connection refused or reset, a timeout, a broken connection."""
    seen: BaseException | None = exc
    while seen is not None:
        names = {cls.__name__ for cls in type(seen).__mro__}
        if names & _NO_ANSWER:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


@contextmanager
def hub_unreachable(settings: Settings) -> Iterator[None]:
    """Turn a Hub request that got no answer (or only errors after the retries) into
    :class:`ServiceUnavailable` for service ``hub``."""
    from dynosaur.errors import HubRequestError
    from dynosaur.redact import redact

    try:
        yield
    except ServiceUnavailable:
        raise
    except HubRequestError as exc:
        answered = exc.status != 0 and exc.status != 429 and exc.status < 500
        reason = getattr(exc.reason, "value", exc.reason)
        if not exc.transient and (reason not in HUB_UNREACHABLE or answered):
            raise
        raise ServiceUnavailable(redact(f"{settings.hub_endpoint}: {exc}"), service="hub") from exc
    except Exception as exc:
        if not no_answer(exc):
            raise
        raise ServiceUnavailable(
            redact(f"{settings.hub_endpoint}: {type(exc).__name__}: {exc}"), service="hub"
        ) from exc


def generate_queue_step(
    settings: Settings, engine: Engine, req: RunRequest, *, batch_id: int | None = None
) -> list[int]:
    """Configs this run generates tasks for: its own datasets' waiting configs (a re-run of the
    key retries them at once), plus due leftovers of runs no longer alive (adopted, recorded in
    ``batch.adopted``)."""
    from dynosaur import generate
    from dynosaur.store import datasets

    batch_id = _batch_of(engine, req, batch_id)
    due = generate.generate_queue(run_settings(settings, req), engine)
    adopted = datasets.adopt_leftovers(engine, batch_id, settings.run_lease_s, due_config_ids=due)
    if adopted:
        batches.note_adopted(
            engine, batch_id, {"datasets": adopted.datasets, "configs": adopted.configs}
        )
        log.warning("run %s adopted %d config(s) of earlier runs: %s", req.run_key,
                    len(adopted.configs), ", ".join(adopted.configs[:20]))  # fmt: skip
    return datasets.owned_configs(engine, batch_id, statuses=("collected", "deferred"))


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

    summary = generate.generate(
        run_settings(settings, req),
        engine,
        config_ids,
        run_key=req.run_key,
        budget_usd=req.budget_usd,
        dry_run=req.dry_run,
        progress=progress,
    )
    unreachable = sum(n for (_, reason), n in summary.counts.items() if reason in UNREACHABLE)
    if unreachable:  # the step recorded them; the run must not look done
        raise ServiceUnavailable(
            f"the LLM endpoint could not be reached for {unreachable} config(s)",
            service="llm",
            deferred=unreachable,
        )
    return summary


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


def publish_step(
    engine: Engine,
    req: RunRequest,
    batch_id: int,
    *,
    lock_timeout_s: float = batches.DEFAULT_LOCK_TIMEOUT_S,
) -> dict[str, Any] | None:
    """Publish the batch; returns its figures (version, counts, cost), or None for a dry run,
    which publishes nothing."""
    if req.dry_run:
        return None
    return figures(batches.publish_batch(engine, batch_id, lock_timeout_s=lock_timeout_s))


def end_run(engine: Engine, req: RunRequest, message: str) -> batches.Batch | None:
    """The end of a run, however it went (the growth DAG's teardown). A finished run's batch is
    published or empty, so a batch still building means a step failed for good: it is marked
    failed with ``message`` (nothing of it becomes visible, its configs go to a later run). A dry
    run's batch stays building for the real run of its key. Returns the batch (None if the run
    opened none).

    The reason says why, from what the steps stored: when the batch still holds work deferred
    because the LLM or the Hub could not be reached (:func:`unreachable_work`), it is
    ``service_unavailable`` and the message names the service; else ``run_failed``."""
    if req.dry_run:
        log.info("dry run: its batch stays building for the real run of %s", req.run_key)
        return None
    batch = batches.find_batch(engine, req.run_key)
    if batch is None:
        log.info("run %s opened no batch: nothing to mark failed", req.run_key)
        return None
    if batch.status == "building":
        reason, why = failure_of(unreachable_work(engine, batch.id), message)
        batch = batches.fail_batch(engine, batch.id, why, reason=reason)
        log.warning("run %s: a step failed, batch %s is marked failed (%s)", req.run_key,
                    batch.id, why)  # fmt: skip
    return batch


def note_unreachable(engine: Engine, batch_id: int, service: str | None) -> None:
    """Record on the batch that its discovery could not reach ``service`` (None: it could);
    best effort: the database may be what is gone."""
    import sqlalchemy as sa

    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "UPDATE batch SET unreachable = :s WHERE id = :b "
                    "AND unreachable IS DISTINCT FROM :s"
                ),
                {"b": batch_id, "s": service},
            )
    except Exception as exc:
        log.warning("batch %s: could not note the unreachable service (%s)", batch_id, exc)


def unreachable_work(engine: Engine, batch_id: int) -> dict[str, int]:
    """Work of the batch waiting because a service could not be reached, per service: its
    datasets the Hub did not answer for (``hub``) when it answered for none of them (as
    :func:`collect_step` judges the Hub down: a few deferred among collected ones are leftovers,
    not an outage), its configs the LLM endpoint did not answer for (``llm``); a discovery that
    could not reach the Hub counts as 0 datasets of ``hub``. Empty when there is none."""
    import sqlalchemy as sa

    with engine.connect() as conn:
        noted = conn.execute(
            sa.text("SELECT unreachable FROM batch WHERE id = :b"), {"b": batch_id}
        ).scalar_one_or_none()
        rows = conn.execute(
            sa.text(
                """
                SELECT 'hub', CASE WHEN tried = missed THEN missed ELSE 0 END
                  FROM (SELECT count(*) FILTER (WHERE status <> 'discovered') AS tried,
                               count(*) FILTER (WHERE status = 'deferred'
                                                  AND reason = ANY(:hub)) AS missed
                          FROM hub_dataset WHERE batch_id = :b) h
                UNION ALL
                SELECT 'llm', count(*) FROM dataset_config c
                  JOIN hub_dataset d ON d.id = c.hub_dataset_id
                 WHERE d.batch_id = :b AND c.status = 'deferred' AND c.reason = ANY(:llm)
                """
            ),
            {"b": batch_id, "hub": sorted(HUB_UNREACHABLE), "llm": sorted(UNREACHABLE)},
        ).all()
    found = {service: int(n) for service, n in rows if n}
    return {noted: 0, **found} if noted else found


def failure_of(unreachable: dict[str, int], message: str) -> tuple[Reason, str]:
    """The reason and message a failed run's batch records: ``service_unavailable`` naming what
    could not be reached (and how much work waits for it) when anything could not be,
    else ``run_failed`` with ``message``."""
    if not unreachable:
        return Reason.RUN_FAILED, message
    what = {"hub": "dataset(s)", "llm": "config(s)"}
    parts = [f"{SERVICE_NAMES[s]} could not be reached "
             f"({f'{n} {what[s]} deferred' if n else 'discovering the run'})"
             for s, n in sorted(unreachable.items())]  # fmt: skip
    return (
        Reason.SERVICE_UNAVAILABLE,
        f"{'; '.join(parts)}: re-running after recovery completes the run ({message})",
    )


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
    lease = settings.run_lease_s
    start = begin_run(engine, req, lease_s=lease)
    if start.already_done:
        return {**figures(start.batch), "already_done": True, "steps": []}
    batch_id = start.batch_id
    steps: list[StepSummary] = []
    try:
        with heartbeat(engine, batch_id, req, lease):
            _step(req, "discover")
            to_collect = discover_step(settings, engine, req, batch_id=batch_id, progress=progress)
            _step(req, "collect")
            steps.append(collect_step(settings, engine, to_collect, progress=progress))
            _step(req, "generate")
            config_ids = generate_queue_step(settings, engine, req, batch_id=batch_id)
            steps.append(generate_step(settings, engine, config_ids, req, progress=progress))
            _step(req, "curate")
            curated = curate_step(settings, engine, req, batch_id, progress=progress)
            if curated is not None:
                steps.append(curated)
            _step(req, "publish")
            published = publish_step(engine, req, batch_id, lock_timeout_s=settings.lock_timeout_s)
    except ServiceUnavailable as exc:
        what = SERVICE_NAMES.get(exc.service, exc.service)
        _fail_quietly(engine, batch_id, f"{what} could not be reached: {exc}",
                      Reason.SERVICE_UNAVAILABLE)  # fmt: skip
        raise
    except BaseException as exc:
        _fail_quietly(engine, batch_id, f"{type(exc).__name__}: {exc}", Reason.RUN_FAILED)
        raise
    if published is None:  # a dry run: the batch stays building for the real run of this key
        published = {
            "batch_id": batch_id,
            "run_key": req.run_key,
            "status": "dry_run",
            "version": None,
        }
    return {
        **published,
        "already_done": False,
        "adopted": batches.get_batch(engine, batch_id).adopted,
        "released": [f"{b.id} ({b.run_key})" for b in start.released],
        "took_over_from": start.took_over_from,
        "steps": [s.to_json() for s in steps],
    }


def _step(req: RunRequest, name: str) -> None:
    log.info("run %s: step %s starts", req.run_key, name)


def _fail_quietly(engine: Engine, batch_id: int, message: str, reason: Reason) -> None:
    """Mark the batch failed; when even that is impossible (the database is gone), leave it
    building: its heartbeat stops, and the next run adopts or releases it."""
    try:
        batches.fail_batch(engine, batch_id, message, reason=reason)
    except Exception as exc:
        log.warning("batch %s could not be marked failed (%s): the next run takes it over",
                    batch_id, exc)  # fmt: skip


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
