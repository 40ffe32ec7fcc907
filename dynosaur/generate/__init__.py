"""Task generation: prompts, the LLM client, the call ledger, cost, and response parsing.

The step's API (the CLI, ``dynosaur grow`` and the Airflow DAG call exactly these)::

    generate_queue(settings, engine, *, limit=None) -> list[int]
    generate(settings, engine, config_ids, *, run_key, budget_usd=None, dry_run=False,
             progress=None) -> StepSummary
"""

from dynosaur.generate.step import generate, generate_queue

__all__ = ["generate", "generate_queue"]
