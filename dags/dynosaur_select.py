"""
### Dynosaur selection: the part of the collection worth training on

Runs on every new version (an event on the `dynosaur_instructions` asset) with the defaults
below: a **replay set** for continual training, i.e. the new batch's tasks plus the
**Replay tasks** earlier tasks whose instructions are most diverse. Trigger it by hand for the
other methods:

- **coreset**: k-means on instance embeddings, then k-center greedy inside every cluster
  (budget: **Fraction**, default 0.005, or **Count**);
- **learning_percentage**: the hardest share of every cluster by how little a small scorer model
  learns from it (needs **Scorer model**, or `DYNOSAUR_SCORER_MODEL`).

Every selection is stored (`SELECT * FROM selection_summary`) under a name derived from its
inputs, so running the same request again computes nothing; its rows are exported as JSONL to
`$DYNOSAUR_EXPORT_DIR/selections/`. Needs the `select` extra (torch, sentence-transformers).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import (
    Asset,
    ExceptionRetryPolicy,
    Param,
    RetryAction,
    RetryRule,
    dag,
    get_current_context,
    task,
)

INSTRUCTIONS = Asset("dynosaur_instructions", uri="x-dynosaur://instructions")


@dag(
    dag_id="dynosaur_select",
    schedule=[INSTRUCTIONS],
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["dynosaur"],
    default_args={
        "retries": 1,
        "retry_delay": timedelta(minutes=2),
        "execution_timeout": timedelta(hours=12),
        "retry_policy": ExceptionRetryPolicy(
            rules=[RetryRule(exception="dynosaur.errors.UsageError", action=RetryAction.FAIL)]
        ),
    },
    params={
        "method": Param(
            "replay",
            enum=["replay", "coreset", "learning_percentage"],
            title="Method",
            description="replay: new batch + diverse earlier tasks; coreset: 0.5% coverage "
            "set; learning_percentage: hardest samples per cluster.",
        ),
        "version": Param(
            None,
            type=["null", "integer"],
            minimum=1,
            title="Version",
            description="Version to select from; empty = the one just published (or the latest).",
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
            0.005,
            type="number",
            exclusiveMinimum=0,
            maximum=1,
            title="Fraction",
            description="coreset / learning_percentage: share of the pool to keep.",
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
    },
)
def dynosaur_select() -> None:
    @task
    def select() -> dict[str, Any]:
        """Compute (or find) the stored selection; returns its name and figures."""
        from dynosaur.airflow_tasks import select_for_version, version_from_events

        context = get_current_context()
        events_version = version_from_events(context.get("triggering_asset_events"))
        return select_for_version(context["params"], events_version)

    @task
    def export(selected: dict[str, Any]) -> dict[str, Any]:
        """Write the selection's rows as JSONL."""
        from dynosaur.airflow_tasks import export_selection

        return export_selection(selected["name"])

    export(select())


dynosaur_select()
