"""
### Dynosaur selection: the part of the collection worth training on

Runs on every new version (an event on the `dynosaur_instructions` asset) with the defaults
below: a **replay set** for continual training, i.e. the new batch's tasks plus the
**Replay tasks** earlier tasks whose instructions are most diverse. Trigger it by hand for the
other methods:

- **coreset**: k-means on instance embeddings, then k-center greedy inside every cluster
  (budget: **Fraction**, empty = 0.005, or **Count**);
- **learning_percentage**: the hardest share of every cluster by how little a small scorer model
  learns from it (budget: **Fraction**, empty = 0.05, or **Count**; needs **Scorer model**, or
  `DYNOSAUR_SCORER_MODEL`).

Every selection is stored (`SELECT * FROM selection_summary`) under a name derived from its
inputs, so running the same request again computes nothing; its rows are exported as JSONL to
`$DYNOSAUR_EXPORT_DIR/selections/`. Needs the `select` extra (torch, sentence-transformers).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import dag, get_current_context, task

from dynosaur.airflow.dags import INSTRUCTIONS, dag_arguments, select_params


@dag(
    dag_id="dynosaur_select",
    schedule=[INSTRUCTIONS],
    params=select_params(),
    **dag_arguments(
        __doc__,
        description="On every new version: a replay set (or a coreset or learning-percentage "
        "selection) to train on",
        tags=["selection"],
        retries=1,
        retry_delay=timedelta(minutes=2),
        execution_timeout=timedelta(hours=12),
        dagrun_timeout=timedelta(hours=14),
    ),
)
def dynosaur_select() -> None:
    @task
    def select() -> dict[str, Any]:
        """Compute (or find) the stored selection; returns its name and figures."""
        from dynosaur.airflow.consumers import select_for_version, version_from_events

        context = get_current_context()
        announced = version_from_events(context.get("triggering_asset_events"))
        return select_for_version(context["params"], announced)

    @task
    def export(selected: dict[str, Any]) -> dict[str, Any]:
        """Write the selection's rows as JSONL."""
        from dynosaur.airflow.consumers import export_selection

        return export_selection(selected["name"])

    export(select())


dynosaur_select()
