"""Task generation: prompts, the LLM client, the call ledger, cost, and response parsing.

The step's API (the CLI, ``dynosaur grow`` and the Airflow DAG call exactly these)::

    generate_queue(settings, engine, *, limit=None) -> list[int]
    generate(settings, engine, config_ids, *, run_key, budget_usd=None, dry_run=False,
             progress=None) -> StepSummary

Inside: ``step`` (the entry point), ``jobs`` (what to send), ``fanout`` (sending, bounded),
``recording`` (writing answers), ``batcher`` (batched store round trips), ``estimate`` (the dry
run), ``ledger`` (claiming rules); the SQL is in ``dynosaur.store.ledger`` and
``dynosaur.store.generations``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dynosaur.generate.step import generate, generate_queue

__all__ = ["generate", "generate_queue"]


def __getattr__(name: str) -> Any:
    # The step pulls in the SDK, the ledger and pandas: import it only when it is used, so that
    # light users of the package (the emulators read the prompt blocks) start fast.
    if name in __all__:
        from dynosaur.generate import step

        return getattr(step, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
