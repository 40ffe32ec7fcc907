"""The generate step: waiting configs -> prompts -> LLM calls through the ledger -> task rows.

``generate`` is synchronous (Airflow and the CLI call it as is): it plans one job per (config,
prompt kind) (:mod:`.jobs`), reuses what the ledger already holds, and sends the rest in an
asyncio fan-out (:mod:`.fanout`) whose answers are recorded in batched transactions
(:mod:`.recording`), so a crash at any point leaves every config either finished or still
waiting for the next run. ``dry_run`` only estimates (:mod:`.estimate`).
"""

from __future__ import annotations

import functools
import logging
from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy.engine import Engine

from dynosaur.errors import LLMAuthError, LLMQuotaError, ServiceUnavailable
from dynosaur.generate.cost import model_price, run_budget
from dynosaur.generate.estimate import estimate
from dynosaur.generate.fanout import FanOut, Figures, Groups, Planned
from dynosaur.generate.jobs import attempt_request, count_jobs, plan_jobs
from dynosaur.generate.ledger import CallRequest, Ledger, lease_seconds
from dynosaur.generate.recording import Recorder
from dynosaur.model import StepSummary
from dynosaur.progress import NullProgress, Progress
from dynosaur.reasons import Reason
from dynosaur.settings import Settings
from dynosaur.store import generations

STEP = "generate"
log = logging.getLogger(__name__)


def generate_queue(
    settings: Settings, engine: Engine, *, limit: int | None = None, run_key: str | None = None
) -> list[int]:
    """Ids of the configs waiting for task generation (``collected``, and ``deferred`` by an
    earlier run: budget reached, API key rejected, no quota, the endpoint unreachable) that are
    due, oldest first. Configs deferred after transient failures are due at their next attempt
    time, or at once for the run ``run_key`` that deferred them."""
    return generations.queue(engine, limit=limit, run_key=run_key)


def generate(
    settings: Settings,
    engine: Engine,
    config_ids: Sequence[int],
    *,
    run_key: str,
    budget_usd: float | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> StepSummary:
    """Propose tasks for the given configs (those still waiting; others are left alone).

    ``budget_usd`` caps what this run (``run_key``, across chunks and processes) may spend; None
    takes ``settings.budget_usd``, a negative value means no cap. ``dry_run`` sends nothing and
    writes nothing: it estimates tokens and cost.

    Raises, after recording what is done: :class:`LLMAuthError` when the endpoint rejects the
    API key, :class:`LLMQuotaError` when the account has no quota left (the run stops: at most the
    calls already in flight finish), :class:`ServiceUnavailable` (service ``llm``) when calls
    could not get an answer (unreachable, timeouts, 5xx, 429 after retries): those generations
    are deferred (retryable) and re-running the same ``run_key`` sends them.
    """
    budget = run_budget(settings, budget_usd)
    price = model_price(settings, settings.llm_model, budget)
    ledger = Ledger(engine, lease_s=lease_seconds(settings))
    if dry_run:
        jobs = plan_jobs(settings, engine, config_ids)
        return estimate(settings, engine, ledger, jobs, price, budget, step=STEP)

    recorder = Recorder(
        engine,
        price,
        settings.tasks_per_config,
        max_unusable=settings.llm_max_unusable,
        max_deferrals=settings.llm_max_deferrals,
        defer_s=settings.llm_defer_s,
    )
    fan_out = FanOut(
        settings,
        ledger,
        recorder,
        price=price,
        budget=budget,
        run_key=run_key,
        progress=progress or NullProgress(),
    )
    ids = list(dict.fromkeys(config_ids))
    chunks = plan_chunks(ids, settings.llm_concurrency)
    fan_out.progress.start(count_jobs(settings, engine, ids), STEP)
    try:
        fan_out.run(
            [functools.partial(_plan, settings, engine, chunk, run_key) for chunk in chunks]
        )
    finally:
        fan_out.progress.finish()
    summary = _summary(engine, config_ids, fan_out.figures)
    deferred = summary.figures["generations_deferred"]
    if fan_out.stop_reason is Reason.LLM_AUTH_ERROR:
        raise LLMAuthError(
            f"the LLM endpoint {settings.llm_base_url} rejected the API key; "
            f"{deferred} generation(s) deferred to a later run"
        )
    if fan_out.stop_reason is Reason.LLM_QUOTA_EXHAUSTED:
        raise LLMQuotaError(
            f"the LLM account has no quota left (insufficient_quota at {settings.llm_base_url}); "
            f"{deferred} generation(s) deferred: add credit or raise the limit, then re-run"
        )
    unreachable = fan_out.figures.generations_deferred_unreachable
    if unreachable:
        log.info("generate summary: %s", summary.figures)
        raise ServiceUnavailable(
            f"the LLM endpoint {settings.llm_base_url} could not answer {unreachable} "
            "generation(s) (unreachable, timeouts, 5xx or 429 after retries); they are deferred: "
            f"re-running run {run_key!r} once it recovers completes the work",
            service="llm",
            deferred=unreachable,
        )
    return summary


def plan_chunks(ids: list[int], concurrency: int) -> list[list[int]]:
    """The configs in the chunks a run plans one after the other: the first fills the wire once
    (so the first calls go out at once), each next one is twice the one before, so that it is
    planned while the chunks before it are on the wire."""
    chunks, start, size = [], 0, max(1, concurrency)
    while start < len(ids):
        chunks.append(ids[start : start + size])
        start, size = start + size, 2 * size
    return chunks


def _plan(settings: Settings, engine: Engine, config_ids: list[int], run_key: str) -> Planned:
    """Plan a chunk of configs: its jobs, their generation rows, and the requests left to send
    grouped by hash (a prompt that had unusable answers sends its next attempt)."""
    jobs = plan_jobs(settings, engine, config_ids)
    rows = generations.upsert_generations(engine, [j.planned() for j in jobs], run_key)
    by_key = {(g.config_id, g.prompt_kind): g for g in rows}
    groups: Groups = defaultdict(list)
    requests: dict[str, CallRequest] = {}
    bases: dict[str, CallRequest] = {}
    for job in jobs:
        generation = by_key[(job.config_id, job.prompt_kind)]
        if generation.status == "succeeded":
            continue
        # After unusable answers, the prompt's next request is a distinct one (attempt n).
        request = attempt_request(job.request, generation.unusable_answers)
        groups[request.request_hash].append(generation)
        requests[request.request_hash] = request
        if request is not job.request:
            bases[request.request_hash] = job.request
    for members in groups.values():  # one lock order for configs that share a request
        members.sort(key=lambda g: g.config_id)
    return dict(groups), requests, bases


def _summary(engine: Engine, config_ids: Sequence[int], figures: Figures) -> StepSummary:
    """Counts per config state (status, reason) after the run, and the run's figures."""
    out = StepSummary(STEP)
    states = generations.config_states(engine, list(dict.fromkeys(config_ids)))
    for status, reason in states.values():
        out.add(status, reason)
    out.figures.update(figures.as_dict())
    return out
