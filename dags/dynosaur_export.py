"""
### Dynosaur export: files of every new version

Runs whenever the growth DAG publishes a version (an event on the `dynosaur_instructions` asset)
and writes that version, all published batches up to it, to
`$DYNOSAUR_EXPORT_DIR/v<N>/` (default `<data dir>/exports`) in the formats of
`DYNOSAUR_EXPORT_FORMATS` (default `jsonl,parquet`), each with a dataset card beside it
(`instruction, input, output, license, website, taskname` per row).

Trigger it by hand to export another version (**Version**; empty = the latest). Exporting a
version again replaces its files.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import Asset, Param, dag, get_current_context, task

INSTRUCTIONS = Asset("dynosaur_instructions", uri="x-dynosaur://instructions")


@dag(
    dag_id="dynosaur_export",
    schedule=[INSTRUCTIONS],
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["dynosaur"],
    default_args={
        "retries": 2,
        "retry_delay": timedelta(minutes=1),
        "execution_timeout": timedelta(hours=2),
    },
    params={
        "version": Param(
            None,
            type=["null", "integer"],
            minimum=1,
            title="Version",
            description="Version to export; empty = the one just published (or the latest).",
        ),
    },
)
def dynosaur_export() -> None:
    @task
    def export() -> list[dict[str, Any]]:
        """Write the version's files; returns what was written (paths and counts)."""
        from dynosaur.airflow_tasks import export_version, version_from_events

        context = get_current_context()
        version = context["params"].get("version") or version_from_events(
            context.get("triggering_asset_events")
        )
        return export_version(version)

    export()


dynosaur_export()
