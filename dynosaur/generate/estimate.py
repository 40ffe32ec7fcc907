"""The dry run of the generate step: what a run would send and cost, sending and writing nothing."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy.engine import Engine

from dynosaur.generate.cost import call_cost, count_prompt_tokens, token_method
from dynosaur.generate.jobs import Job, max_output_tokens
from dynosaur.generate.ledger import Ledger
from dynosaur.model import StepSummary
from dynosaur.reasons import Reason
from dynosaur.settings import ModelPrice, Settings
from dynosaur.store import ledger as ledger_store


def estimate(
    settings: Settings,
    engine: Engine,
    ledger: Ledger,
    jobs: Sequence[Job],
    price: ModelPrice | None,
    budget: float | None,
    *,
    step: str = "generate",
) -> StepSummary:
    """Estimate tokens and cost of ``jobs``: prompts counted locally, answers as long as the
    model's average answer so far (else the full token allowance); answers the ledger already
    holds are reused for free."""
    model = settings.llm_model
    # Unusable answers are in the ledger (paid) but never served: not reused.
    known = {
        digest: record
        for digest, record in ledger.succeeded(j.request.request_hash for j in jobs).items()
        if Reason.LLM_UNUSABLE_ANSWER.value not in record.notes
    }
    typical = ledger_store.mean_completion_tokens(engine, model)
    out_tokens = round(typical) if typical is not None else max_output_tokens(settings)
    summary = StepSummary(step)
    seen: set[str] = set()
    tokens_in = 0
    cost = cost_max = 0.0
    fit = 0
    by_kind: dict[str, list[int]] = defaultdict(list)
    for job in jobs:
        digest = job.request.request_hash
        if digest in known or digest in seen:
            summary.add("dry_run", "reused")
            continue
        seen.add(digest)
        prompt_tokens = count_prompt_tokens(job.request.messages, model)
        by_kind[job.prompt_kind].append(prompt_tokens)
        tokens_in += prompt_tokens
        cost += call_cost(price, prompt_tokens, out_tokens)
        cost_max += call_cost(price, prompt_tokens, max_output_tokens(settings))
        if budget is None or cost <= budget:
            fit += 1
        summary.add("dry_run", job.prompt_kind)
    summary.figures.update(
        {
            "configs": len({j.config_id for j in jobs}),
            "calls_to_send": len(seen),
            "calls_reused": len(known),
            "calls_within_budget": fit,
            "tokens_in_estimate": tokens_in,
            "tokens_out_estimate": out_tokens * len(seen),
            "cost_usd_estimate": round(cost, 6),
            "cost_usd_max": round(cost_max, 6),
            "budget_usd": budget if budget is not None else "none",
            "token_count_method": token_method(model),
        }
    )
    for kind, counts in sorted(by_kind.items()):
        summary.figures[f"prompt_tokens_mean_{kind}"] = round(sum(counts) / len(counts), 1)
    return summary
