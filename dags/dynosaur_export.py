"""
### Dynosaur export: files of every new version

Runs whenever the growth DAG publishes a version (an event on the `dynosaur_instructions` asset)
and writes the rows that version added (its delta) to `$DYNOSAUR_EXPORT_DIR/v<N>/` (default
`<data dir>/exports`) in the formats of `DYNOSAUR_EXPORT_FORMATS` (default `jsonl,parquet`), each
with a dataset card beside it (`instruction, input, output, license, website, taskname` per row),
and `v<N>/manifest.json`, the files (deltas of versions 1..N) that make up version N. A publish
costs its own batch, whatever the history. **License classes** (e.g. `permissive,share-alike`)
restricts the files to those classes (their names and card say so).
It also writes the version's growth report `report.html` (one static page: growth, rejections
by reason, cost, categories, licenses, languages, samples; `dynosaur report` writes the same by
hand).

Trigger it by hand to export another version (**Version**; empty = the latest). Exporting a
version again replaces its files.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import Param, dag, get_current_context, task

from dynosaur.airflow.dags import INSTRUCTIONS, dag_arguments, version_param


@dag(
    dag_id="dynosaur_export",
    schedule=[INSTRUCTIONS],
    params={
        "version": version_param(
            "Version to export; empty = the one just published (or the latest)."
        ),
        "licenses": Param(
            None,
            type=["null", "string"],
            title="License classes",
            description="Only these license classes, e.g. permissive,share-alike; empty = all.",
        ),
    },
    **dag_arguments(
        __doc__,
        description="On every new version: its JSONL/Parquet files, dataset card and growth report",
        tags=["export"],
        retries=2,
        retry_delay=timedelta(minutes=1),
        execution_timeout=timedelta(hours=2),
        dagrun_timeout=timedelta(hours=4),
    ),
)
def dynosaur_export() -> None:
    @task
    def export() -> list[dict[str, Any]]:
        """Write the version's files; returns what was written (paths and counts)."""
        from dynosaur.airflow.consumers import export_version, version_from_events

        context = get_current_context()
        version = context["params"].get("version") or version_from_events(
            context.get("triggering_asset_events")
        )
        return export_version(version, context["params"].get("licenses"))

    export()


dynosaur_export()
