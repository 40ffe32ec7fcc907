"""
### Dynosaur growth: one new version of the instruction collection per day

Each daily run covers its data interval (the previous UTC day) and goes:

1. **start**: names the run (its window and/or explicit ids, as `dynosaur grow` does) and opens
   its batch; a re-run of a finished interval finds it finished, and every later task does nothing.
2. **discover**: lists Hub datasets created or modified in the interval (or takes the explicit
   ids from the trigger form) and queues them, with earlier deferred ones that are due.
3. **collect** (mapped over chunks): cards, configs, features and sample rows; skip rules.
4. **plan_generation**: chunks the configs waiting for tasks (this run's and earlier leftovers).
5. **generate** (mapped over chunks, `llm` pool): the LLM proposes tasks per config; every call
   goes through the ledger, so retries and re-runs never pay twice; stops at the run's budget.
6. **curate**: validity filters, instance construction, de-duplication against the whole store.
7. **publish**: one transaction makes the batch visible as version N and emits an event on the
   `dynosaur_instructions` asset with the batch's figures (downstream: export, selection).
8. **mark_failed** (teardown: runs last, whatever happened): if a step failed for good, marks
   the batch failed, so nothing of it is ever visible and its configs go to a later run; its
   reason is `service_unavailable`, naming the Hub or the LLM endpoint, when work waits for one
   that could not be reached (re-run the interval once it is back), else `run_failed`.

A dry run ends in **estimate**: the sum of every generate task's estimate (tokens, calls,
USD), in its log, its return value and the run's note. Every other run's note (the run's
**Notes**) holds the batch's figures and the path of the version's growth report, which the
export DAG writes (`dynosaur report` writes it by hand). A failed run logs one line saying
where and why, and posts it to the `dynosaur_notify` webhook connection if one is defined.

Trigger it by hand with **Trigger DAG w/ config** to add explicit datasets now, replay another
window, cap the number of datasets, switch model, or do a dry run (discover and collect, then
only estimate the LLM's cost; nothing is curated or published).
Every skip, deferral and rejection is stored with a reason: `SELECT * FROM outcome_by_reason`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import (
    CronDataIntervalTimetable,
    Metadata,
    TriggerRule,
    dag,
    get_current_context,
    task,
)
from airflow.sdk.exceptions import AirflowSkipException

from dynosaur.airflow.dags import (
    INSTRUCTIONS,
    LLM_POOL,
    dag_arguments,
    growth_params,
    on_growth_success,
)

# The mapped tasks' names in the UI: how many ids a chunk holds and its first and last id.
_CHUNK = (
    "{% set c = task.op_kwargs['chunk'] %}{{ c | length }} {{ what }}"
    "{{ '' if c | length == 1 else 's' }} (ids {{ c[0] }}–{{ c[-1] }})"
)


@dag(
    dag_id="dynosaur_growth",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    params=growth_params(),
    on_success_callback=on_growth_success,
    **dag_arguments(
        __doc__,
        description="Daily: new Hub datasets -> LLM-proposed tasks -> curated instances -> "
        "a new version",
        tags=["growth", "llm"],
        retries=3,
        retry_delay=timedelta(minutes=1),
        execution_timeout=timedelta(hours=2),
        dagrun_timeout=timedelta(hours=20),
    ),
)
def dynosaur_growth() -> None:
    @task
    def start() -> dict[str, Any]:
        """Name the run and open (or find) its batch; the run travels through XCom (no secrets)."""
        from dynosaur.airflow.tasks import start_run

        return start_run(get_current_context())

    @task
    def discover(run: dict[str, Any]) -> list[list[int]]:
        """Queue new and changed datasets; returns chunks of dataset row ids."""
        from dynosaur.airflow.tasks import discover_chunks

        return discover_chunks(run)

    @task(map_index_template=_CHUNK.replace("{{ what }}", "dataset"))
    def collect(chunk: list[int], run: dict[str, Any]) -> dict[str, Any]:
        """Collect cards, configs and sample rows for one chunk of datasets."""
        from dynosaur.airflow.tasks import collect_chunk

        return collect_chunk(run, chunk)

    @task(trigger_rule=TriggerRule.NONE_FAILED)
    def plan_generation(run: dict[str, Any], collected: list[dict[str, Any]]) -> list[list[int]]:
        """Chunks of config ids waiting for task generation (this run's and earlier leftovers)."""
        from dynosaur.airflow.tasks import generation_chunks

        return generation_chunks(run)

    @task(pool=LLM_POOL, map_index_template=_CHUNK.replace("{{ what }}", "config"))
    def generate(chunk: list[int], run: dict[str, Any]) -> dict[str, Any]:
        """Ask the LLM for tasks for one chunk of configs (ledger first, budget enforced)."""
        from dynosaur.airflow.tasks import generate_chunk

        return generate_chunk(run, chunk)

    @task(trigger_rule=TriggerRule.NONE_FAILED)
    def estimate(run: dict[str, Any], generated: list[dict[str, Any]]) -> dict[str, Any]:
        """A dry run's estimate: the sum over every generate task (skipped on real runs)."""
        from dynosaur.airflow.notes import dry_run_estimate

        total = dry_run_estimate(run, generated, get_current_context())
        if total is None:
            raise AirflowSkipException("not a dry run: the LLM was called, nothing to estimate")
        return total

    @task(trigger_rule=TriggerRule.NONE_FAILED)
    def curate(run: dict[str, Any], generated: list[dict[str, Any]]) -> dict[str, Any] | None:
        """Filter tasks, build instances, de-duplicate against the store."""
        from dynosaur.airflow.tasks import curate_batch

        return curate_batch(run)

    @task(outlets=[INSTRUCTIONS], trigger_rule=TriggerRule.NONE_FAILED)
    def publish(run: dict[str, Any], curated: dict[str, Any] | None):
        """Make the batch visible as the next version; announce it with its figures."""
        from dynosaur.airflow.tasks import publish_batch

        figures = publish_batch(run)
        if figures is None:  # a re-run of a finished interval, a dry run, an empty batch
            raise AirflowSkipException("this run publishes nothing new")
        yield Metadata(INSTRUCTIONS, figures)
        return figures

    @task(retries=0)
    def mark_failed() -> None:
        """If a step failed for good, mark the batch failed so nothing of it is ever visible."""
        from dynosaur.airflow.tasks import mark_failed

        mark_failed(get_current_context())

    run = start()
    chunks = discover(run)
    collected = collect.partial(run=run).expand(chunk=chunks)
    config_chunks = plan_generation(run, collected)
    generated = generate.partial(run=run).expand(chunk=config_chunks)
    estimate(run, generated)
    curated = curate(run, generated)
    published = publish(run, curated)
    # Every failure upstream ends publish (failed, upstream_failed or skipped), so one edge is
    # enough for the teardown to run last, whatever happened, and the graph stays readable.
    published >> mark_failed().as_teardown()


dynosaur_growth()
