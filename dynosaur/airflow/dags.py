"""What the DAG files share: the asset, the DAG arguments and default args, the trigger forms.

The DAG files import this module at parse time, and the DAG processor parses them every few
seconds: it imports only Airflow's authoring API and the standard library.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import Asset, ExceptionRetryPolicy, Param, RetryAction, RetryRule

from dynosaur.airflow import LLM_POOL

__all__ = [
    "INSTRUCTIONS",
    "LLM_POOL",
    "NO_RETRY",
    "dag_arguments",
    "growth_params",
    "select_params",
    "version_param",
]

# Updated by the growth DAG's publish task (with the batch's figures); the export and
# selection DAGs are scheduled on it.
INSTRUCTIONS = Asset("dynosaur_instructions", uri="x-dynosaur://instructions")

# Errors that retrying cannot fix: fail at once instead of burning retries.
NO_RETRY = ExceptionRetryPolicy(
    rules=[
        RetryRule(exception="dynosaur.errors.UsageError", action=RetryAction.FAIL),
        RetryRule(exception="dynosaur.errors.LLMAuthError", action=RetryAction.FAIL),
        RetryRule(exception="openai.AuthenticationError", action=RetryAction.FAIL),
    ]
)


def log_worker(context: Any) -> None:
    """Say in the task log which worker runs the task (several workers share the queue)."""
    ti = context["ti"]
    logging.getLogger("dynosaur.dag").info("%s runs on worker %s", ti.task_id, ti.hostname)


def on_run_failure(context: Any) -> None:
    """Failure callback of every DAG: one summary line, the webhook if configured, the note."""
    from dynosaur.airflow.notes import on_run_failure as callback

    callback(context)


def on_growth_success(context: Any) -> None:
    """Success callback of the growth DAG: the run note with the batch's figures."""
    from dynosaur.airflow.notes import on_run_success

    on_run_success(context)


OWNER = "dynosaur"


def dag_arguments(
    doc_md: str | None,
    *,
    description: str,
    tags: list[str],
    retries: int,
    retry_delay: timedelta,
    execution_timeout: timedelta,
    dagrun_timeout: timedelta,
) -> dict[str, Any]:
    """The ``@dag`` arguments every Dynosaur DAG shares, with its own description, tags, retries
    and time limits: one run at a time, no catchup, retries that back off exponentially (at most
    30 minutes apart) except for errors retrying cannot fix, a run that takes longer than
    ``dagrun_timeout`` fails, and a failed run logs one line (and notifies, if configured)."""
    return {
        "start_date": pendulum.datetime(2024, 1, 1, tz="UTC"),
        "catchup": False,
        "max_active_runs": 1,
        "doc_md": doc_md,
        "description": description,
        "tags": ["dynosaur", *tags],
        "dagrun_timeout": dagrun_timeout,
        "on_failure_callback": on_run_failure,
        "default_args": {
            "owner": OWNER,
            "retries": retries,
            "retry_delay": retry_delay,
            "retry_exponential_backoff": 2.0,
            "max_retry_delay": timedelta(minutes=30),
            "execution_timeout": execution_timeout,
            "retry_policy": NO_RETRY,
            "on_execute_callback": log_worker,
        },
    }


def growth_params() -> dict[str, Param]:
    """The growth DAG's trigger form: the fields of ``dynosaur grow`` (see
    :func:`dynosaur.pipeline.request_from_trigger`), plus the chunk size of the mapped tasks."""
    return {
        "dataset_ids": Param(
            None,
            type=["null", "array"],
            items={"type": "string"},
            title="Dataset ids",
            description="Hub dataset ids to add now (e.g. org/name); bypasses the listing. The "
            "run is named by the ids (and the window, if given): the same ids again add nothing "
            "unless you give a new run key.",
        ),
        "window_start": Param(
            None,
            type=["null", "string"],
            format="date-time",
            title="Window start",
            description="Replay another window: datasets created/modified from this instant.",
        ),
        "window_end": Param(
            None,
            type=["null", "string"],
            format="date-time",
            title="Window end",
            description="End of the replayed window (exclusive).",
        ),
        "max_datasets": Param(
            None,
            type=["null", "integer"],
            minimum=1,
            title="Max datasets",
            description="Collect at most this many datasets in this run.",
        ),
        "model": Param(
            None,
            type=["null", "string"],
            title="Model",
            description="LLM model for task generation (default: the configured one).",
        ),
        "tasks_per_config": Param(
            None,
            type=["null", "integer"],
            minimum=1,
            maximum=10,
            title="Tasks per config",
            description="Tasks the LLM is asked for per dataset config (default: the "
            "configured one, DYNOSAUR_TASKS_PER_CONFIG).",
        ),
        "budget_usd": Param(
            None,
            type=["null", "number"],
            minimum=0,
            title="Budget (USD)",
            description="LLM spend cap for this run (default: the configured one).",
        ),
        "dry_run": Param(
            False,
            type=["null", "boolean"],
            title="Dry run",
            description="Discover and collect as usual, estimate the tokens and cost of "
            "generation without calling the LLM; curate and publish nothing.",
        ),
        "run_key": Param(
            None,
            type=["null", "string"],
            title="Run key",
            description="Identity of the run (default: the window and/or the ids, as "
            "`dynosaur grow` names it); a run key whose batch is finished adds nothing.",
        ),
        "chunk_size": Param(
            25,
            type="integer",
            minimum=1,
            maximum=1000,
            title="Chunk size",
            description="Datasets (collect) or configs (generate) per mapped task instance.",
        ),
    }


def version_param(description: str) -> Param:
    """The ``version`` field of the export and selection forms (empty: the announced version)."""
    return Param(
        None, type=["null", "integer"], minimum=1, title="Version", description=description
    )


def select_params() -> dict[str, Param]:
    """The selection DAG's trigger form; an empty field leaves the choice to the library's
    default for the method (e.g. the fraction: 0.005 for coreset, 0.05 for learning
    percentage)."""
    return {
        "method": Param(
            "replay",
            enum=["replay", "coreset", "learning_percentage"],
            title="Method",
            description="replay: new batch + diverse earlier tasks; coreset: 0.5% coverage "
            "set; learning_percentage: hardest samples per cluster.",
        ),
        "version": version_param(
            "Version to select from; empty = the one just published (or the latest)."
        ),
        "replay_tasks": Param(
            100,
            type="integer",
            minimum=0,
            title="Replay tasks",
            description="replay: how many earlier tasks to add to the new batch.",
        ),
        "replay_strategy": Param(
            "instruction",
            enum=["instruction", "random", "data"],
            title="Replay strategy",
            description="instruction: most diverse instructions; random; data: most diverse "
            "instance embeddings.",
        ),
        "fraction": Param(
            None,
            type=["null", "number"],
            exclusiveMinimum=0,
            maximum=1,
            title="Fraction",
            description="coreset / learning_percentage: share of the pool to keep (empty: "
            "the method's default, 0.005 for coreset and 0.05 for learning percentage).",
        ),
        "count": Param(
            None,
            type=["null", "integer"],
            minimum=1,
            title="Count",
            description="coreset / learning_percentage: keep this many instead of a fraction.",
        ),
        "per": Param(
            "pool",
            enum=["pool", "category", "task"],
            title="Coreset per",
            description="coreset: over the whole pool, or separately per task category / task.",
        ),
        "scorer_model": Param(
            None,
            type=["null", "string"],
            title="Scorer model",
            description="learning_percentage: causal LM name or path (e.g. a 350M model).",
        ),
        "epochs": Param(
            None,
            type=["null", "integer"],
            minimum=1,
            title="Epochs",
            description="learning_percentage: training epochs of the scorer (default 3).",
        ),
        "seed": Param(0, type="integer", minimum=0, title="Seed", description="Random seed."),
        "name": Param(
            None,
            type=["null", "string"],
            title="Name",
            description="Name to store the selection under (default: derived from the inputs).",
        ),
    }
