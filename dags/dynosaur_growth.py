"""
### Dynosaur growth: one new version of the instruction collection per day

Each daily run covers its data interval (the previous UTC day) and goes:

1. **start**: opens the run's batch (idempotent: a re-run of the same interval finds it).
2. **discover**: lists Hub datasets created or modified in the interval (or takes the explicit
   ids from the trigger form) and queues them, with earlier deferred ones that are due.
3. **collect** (mapped over chunks): cards, configs, features and sample rows; skip rules.
4. **generate** (mapped over chunks, `llm` pool): the LLM proposes tasks per config; every call
   goes through the ledger, so retries and re-runs never pay twice; stops at the run's budget.
5. **curate**: validity filters, instance construction, de-duplication against the whole store.
6. **publish**: one transaction makes the batch visible as version N and emits an event on the
   `dynosaur_instructions` asset with the batch's figures (downstream: export, selection).

Trigger it by hand with **Trigger DAG w/ config** to add explicit datasets now, replay another
window, cap the number of datasets, switch model, or do a dry run that only estimates LLM cost.
Every skip and rejection is stored with a reason: `SELECT * FROM rejection_by_reason`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import (
    Asset,
    CronDataIntervalTimetable,
    ExceptionRetryPolicy,
    Metadata,
    Param,
    RetryAction,
    RetryRule,
    TriggerRule,
    dag,
    get_current_context,
    task,
)
from airflow.sdk.exceptions import AirflowSkipException

# Updated by publish; the export and selection DAGs run on it (same name and URI there).
INSTRUCTIONS = Asset("dynosaur_instructions", uri="x-dynosaur://instructions")

# Errors that retrying cannot fix: fail at once instead of burning retries.
NO_RETRY = ExceptionRetryPolicy(
    rules=[
        RetryRule(exception="dynosaur.errors.UsageError", action=RetryAction.FAIL),
        RetryRule(exception="dynosaur.errors.LLMAuthError", action=RetryAction.FAIL),
        RetryRule(exception="openai.AuthenticationError", action=RetryAction.FAIL),
    ]
)


def log_worker(context: dict) -> None:
    """Say in the task log which worker runs the task (several workers share the queue)."""
    import logging

    ti = context["ti"]
    logging.getLogger("dynosaur.dag").info("%s runs on worker %s", ti.task_id, ti.hostname)


@dag(
    dag_id="dynosaur_growth",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["dynosaur"],
    default_args={
        "retries": 3,
        "retry_delay": timedelta(minutes=1),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=30),
        "execution_timeout": timedelta(hours=2),
        "retry_policy": NO_RETRY,
        "on_execute_callback": log_worker,
    },
    params={
        "dataset_ids": Param(
            [],
            type="array",
            items={"type": "string"},
            title="Dataset ids",
            description="Hub dataset ids to add now (e.g. org/name); bypasses the listing.",
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
            description="Tasks the LLM is asked for per dataset config (default 3).",
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
            type="boolean",
            title="Dry run",
            description="Estimate tokens and cost of generation without calling the LLM.",
        ),
        "chunk_size": Param(
            25,
            type="integer",
            minimum=1,
            maximum=1000,
            title="Chunk size",
            description="Datasets (collect) or configs (generate) per mapped task instance.",
        ),
    },
)
def dynosaur_growth() -> None:
    @task
    def start() -> dict[str, Any]:
        """Open (or find) this run's batch; the run request travels through XCom (no secrets)."""
        from dynosaur.airflow_tasks import start_run

        return start_run(get_current_context())

    @task
    def discover(run: dict[str, Any]) -> list[list[int]]:
        """Queue new and changed datasets; returns chunks of dataset row ids."""
        from dynosaur.airflow_tasks import discover_chunks

        return discover_chunks(run)

    @task(map_index_template="{{ task.op_kwargs['chunk'] | length }} datasets")
    def collect(chunk: list[int], run: dict[str, Any]) -> dict[str, Any]:
        """Collect cards, configs and sample rows for one chunk of datasets."""
        from dynosaur.airflow_tasks import collect_chunk

        return collect_chunk(run, chunk)

    @task(trigger_rule=TriggerRule.NONE_FAILED)
    def plan_generation(run: dict[str, Any], collected: list[dict[str, Any]]) -> list[list[int]]:
        """Chunks of config ids waiting for task generation (this run's and earlier leftovers)."""
        from dynosaur.airflow_tasks import generation_chunks

        return generation_chunks(run)

    @task(pool="llm", map_index_template="{{ task.op_kwargs['chunk'] | length }} configs")
    def generate(chunk: list[int], run: dict[str, Any]) -> dict[str, Any]:
        """Ask the LLM for tasks for one chunk of configs (ledger first, budget enforced)."""
        from dynosaur.airflow_tasks import generate_chunk

        return generate_chunk(run, chunk)

    @task(trigger_rule=TriggerRule.NONE_FAILED)
    def curate(run: dict[str, Any], generated: list[dict[str, Any]]) -> dict[str, Any] | None:
        """Filter tasks, build instances, de-duplicate against the store."""
        from dynosaur.airflow_tasks import curate_batch

        return curate_batch(run)

    @task(outlets=[INSTRUCTIONS], trigger_rule=TriggerRule.NONE_FAILED)
    def publish(run: dict[str, Any], curated: dict[str, Any] | None):
        """Make the batch visible as the next version; announce it with its figures."""
        from dynosaur.airflow_tasks import publish_batch

        figures = publish_batch(run)
        if figures is None:  # a re-run of a finished interval, or a dry run: no new version
            raise AirflowSkipException("this run publishes nothing new")
        yield Metadata(INSTRUCTIONS, figures)
        return figures

    @task(trigger_rule=TriggerRule.ONE_FAILED, retries=0)
    def mark_failed(run: dict[str, Any]) -> None:
        """A step failed for good: mark the batch failed so nothing of it is ever visible."""
        from dynosaur.airflow_tasks import fail_batch

        fail_batch(run)

    run = start()
    chunks = discover(run)
    collected = collect.partial(run=run).expand(chunk=chunks)
    config_chunks = plan_generation(run, collected)
    generated = generate.partial(run=run).expand(chunk=config_chunks)
    curated = curate(run, generated)
    published = publish(run, curated)
    [chunks, collected, config_chunks, generated, curated, published] >> mark_failed(run)


dynosaur_growth()
