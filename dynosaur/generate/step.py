"""The generate step: waiting configs -> prompts -> LLM calls through the ledger -> task rows.

``generate`` is synchronous (Airflow and the CLI call it as is): it plans one job per (config,
prompt kind) (:mod:`.jobs`), reuses what the ledger already holds, and sends the rest in an
asyncio fan-out (:mod:`.fanout`) whose answers are recorded in batched transactions
(:mod:`.recording`), so a crash at any point leaves every config either finished or still
waiting for the next run. ``dry_run`` only estimates (:mod:`.estimate`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy.engine import Engine

from dynosaur.errors import LLMAuthError
from dynosaur.generate.cost import model_price, run_budget
from dynosaur.generate.estimate import estimate
from dynosaur.generate.fanout import FanOut, Figures, Groups
from dynosaur.generate.jobs import plan_jobs
from dynosaur.generate.ledger import CallRequest, Ledger, lease_seconds
from dynosaur.generate.recording import Recorder
from dynosaur.model import StepSummary
from dynosaur.progress import NullProgress, Progress
from dynosaur.reasons import Reason
from dynosaur.settings import Settings
from dynosaur.store import generations

STEP = "generate"


def generate_queue(settings: Settings, engine: Engine, *, limit: int | None = None) -> list[int]:
    """Ids of the configs waiting for task generation (``collected``, and ``deferred`` by an
    earlier run: budget reached, API key rejected), oldest first."""
    return generations.queue(engine, limit=limit)


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
    writes nothing: it estimates tokens and cost. Raises :class:`LLMAuthError` (after recording
    what is done) when the endpoint rejects the API key.
    """
    budget = run_budget(settings, budget_usd)
    price = model_price(settings, settings.llm_model, budget)
    jobs = plan_jobs(settings, engine, config_ids)
    ledger = Ledger(engine, lease_s=lease_seconds(settings))
    if dry_run:
        return estimate(settings, engine, ledger, jobs, price, budget, step=STEP)

    rows = generations.upsert_generations(engine, [j.planned() for j in jobs], run_key)
    by_key = {(g.config_id, g.prompt_kind): g for g in rows}
    groups: Groups = defaultdict(list)
    requests: dict[str, CallRequest] = {}
    for job in jobs:
        generation = by_key[(job.config_id, job.prompt_kind)]
        if generation.status == "succeeded":
            continue
        groups[job.request.request_hash].append(generation)
        requests[job.request.request_hash] = job.request
    for members in groups.values():  # one lock order for configs that share a request
        members.sort(key=lambda g: g.config_id)

    fan_out = FanOut(
        settings,
        ledger,
        Recorder(engine, price, settings.tasks_per_config),
        price=price,
        budget=budget,
        run_key=run_key,
        progress=progress or NullProgress(),
    )
    fan_out.progress.start(sum(len(g) for g in groups.values()), STEP)
    try:
        fan_out.reuse_known(groups, requests)
        fan_out.run(groups, requests)
    finally:
        fan_out.progress.finish()
    summary = _summary(engine, config_ids, fan_out.figures)
    if fan_out.stop_reason is Reason.LLM_AUTH_ERROR:
        raise LLMAuthError(
            f"the LLM endpoint {settings.llm_base_url} rejected the API key; "
            f"{summary.figures['generations_deferred']} generation(s) deferred to a later run"
        )
    return summary


def _summary(engine: Engine, config_ids: Sequence[int], figures: Figures) -> StepSummary:
    """Counts per config state (status, reason) after the run, and the run's figures."""
    out = StepSummary(STEP)
    states = generations.config_states(engine, list(dict.fromkeys(config_ids)))
    for status, reason in states.values():
        out.add(status, reason)
    out.figures.update(figures.as_dict())
    return out
