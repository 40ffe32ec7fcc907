"""The DAG files: they import cleanly, use Airflow 3 imports only, and stay thin."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from types import SimpleNamespace

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.airflow

DAG_FILES = sorted((REPO / "dags").glob("*.py"))


def test_dag_folder_imports_without_errors() -> None:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert bag.import_errors == {}
    assert "dynosaur_growth" in bag.dag_ids


def test_dag_files_use_no_deprecated_airflow_imports() -> None:
    ruff = [sys.executable, "-m", "ruff", "check", "--select", "AIR", "--no-cache"]
    result = subprocess.run([*ruff, *map(str, DAG_FILES)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# What a DAG file may import at top level: Airflow's authoring API, the standard library, and the
# one module of ours made for parse time (the asset, default args and trigger forms).
PARSE_TIME_IMPORTS = {"__future__", "airflow", "pendulum", "datetime", "typing"}
PARSE_TIME_MODULE = "dynosaur.airflow.dags"


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_dag_files_import_only_airflow_and_the_shared_dag_parts_at_top_level(path) -> None:
    """Our library (pandas, the store, the clients...) is imported inside tasks, not at parse
    time; the asset, default args and trigger forms come from one shared module."""
    tree = ast.parse(path.read_text())
    modules = {node.module or "" for node in tree.body if isinstance(node, ast.ImportFrom)} | {
        alias.name for node in tree.body if isinstance(node, ast.Import) for alias in node.names
    }
    ours = {m for m in modules if m.split(".")[0] == "dynosaur"}
    assert ours <= {PARSE_TIME_MODULE}
    assert {m.split(".")[0] for m in modules - ours} <= PARSE_TIME_IMPORTS


def test_the_shared_dag_parts_load_nothing_heavy_at_parse_time() -> None:
    """Importing dynosaur.airflow.dags (what every DAG file does) in a fresh interpreter loads
    no module of the library beyond settings and errors, and no data library."""
    probe = (
        "import sys, json; import airflow.sdk; before = set(sys.modules); "
        f"import {PARSE_TIME_MODULE}; print(json.dumps(sorted(set(sys.modules) - before)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=300
    )
    loaded = set(json.loads(done.stdout.strip().splitlines()[-1]))
    ours = {m for m in loaded if m.split(".")[0] == "dynosaur"}
    assert ours <= {
        "dynosaur",
        "dynosaur.settings",
        "dynosaur.errors",
        "dynosaur.airflow",
        PARSE_TIME_MODULE,
    }
    heavy = {"pandas", "pyarrow", "datasets", "torch", "sentence_transformers", "psycopg2"}
    assert not {m.split(".")[0] for m in loaded} & heavy


def test_every_dag_uses_the_one_asset_and_the_shared_retry_policy() -> None:
    from airflow.dag_processing.dagbag import DagBag

    from dynosaur.airflow.dags import INSTRUCTIONS, NO_RETRY

    dags = DagBag(dag_folder=str(REPO / "dags")).dags
    growth, export, select = (dags[f"dynosaur_{n}"] for n in ("growth", "export", "select"))
    publish = growth.get_task("publish")
    assert [o.uri for o in publish.outlets] == [INSTRUCTIONS.uri]
    for consumer in (export, select):
        assert consumer.timetable.asset_condition.objects == (INSTRUCTIONS,)
    for dag in (growth, export, select):
        assert all(t.retry_policy == NO_RETRY for t in dag.tasks), dag.dag_id
        assert dag.max_active_runs == 1 and dag.catchup is False


def test_growth_dag_shape() -> None:
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(REPO / "dags")).dags["dynosaur_growth"]
    tasks = {t.task_id: t for t in dag.tasks}
    assert set(tasks) == {
        "start",
        "discover",
        "collect",
        "plan_generation",
        "generate",
        "curate",
        "publish",
        "estimate",
        "mark_failed",
    }
    # mark_failed runs last, whatever happened, and does not decide the run's state; one edge
    # (from publish, which every failure upstream ends) keeps the graph readable.
    assert tasks["mark_failed"].is_teardown and not tasks["mark_failed"].on_failure_fail_dagrun
    assert tasks["mark_failed"].upstream_task_ids == {"publish"}
    assert tasks["publish"].get_flat_relative_ids(upstream=True) == set(tasks) - {
        "publish",
        "mark_failed",
        "estimate",
    }
    assert tasks["estimate"].upstream_task_ids == {"start", "generate"}
    assert tasks["generate"].pool == "llm"
    assert tasks["collect"].is_mapped and tasks["generate"].is_mapped
    assert dag.catchup is False
    assert type(dag.timetable).__name__ == "CronDataIntervalTimetable"
    assert all(p.description for p in dag.params.values()), "every trigger-form field is explained"
    assert dag.doc_md and "version" in dag.doc_md
    assert [o.name for o in tasks["publish"].outlets] == ["dynosaur_instructions"]


def test_every_dag_explains_itself() -> None:
    from airflow.dag_processing.dagbag import DagBag

    from dynosaur.airflow.dags import on_run_failure

    for dag in DagBag(dag_folder=str(REPO / "dags")).dags.values():
        assert dag.description and len(dag.description) < 120, dag.dag_id
        assert dag.owner == "dynosaur", dag.dag_id
        assert "dynosaur" in dag.tags and len(dag.tags) > 1, dag.dag_id
        assert dag.dagrun_timeout is not None and dag.dagrun_timeout.total_seconds() > 0
        assert dag.on_failure_callback is on_run_failure, dag.dag_id
        assert all(t.owner == "dynosaur" for t in dag.tasks), dag.dag_id


def test_optional_fields_of_the_trigger_forms_are_not_required() -> None:
    """The form marks a field required when its schema does not accept null: only fields with
    a default that always applies (chunk size, method, seed...) may be so."""
    from airflow.dag_processing.dagbag import DagBag

    dags = DagBag(dag_folder=str(REPO / "dags")).dags
    growth = dags["dynosaur_growth"].params
    for name in ("dataset_ids", "dry_run", "window_start", "max_datasets", "run_key"):
        assert "null" in growth.get_param(name).schema["type"], name
    for dag in dags.values():
        for name, param in dag.params.items():
            if "null" not in param.schema.get("type", ["null"]):
                assert param.value is not None, (dag.dag_id, name)


def test_mapped_tasks_are_named_by_their_chunk() -> None:
    from airflow.dag_processing.dagbag import DagBag
    from jinja2 import Environment

    dag = DagBag(dag_folder=str(REPO / "dags")).dags["dynosaur_growth"]
    env = Environment()
    for task_id, what in (("collect", "dataset"), ("generate", "config")):
        template = env.from_string(dag.get_task(task_id).map_index_template)
        one = template.render(task=SimpleNamespace(op_kwargs={"chunk": [7]}))
        many = template.render(task=SimpleNamespace(op_kwargs={"chunk": [3, 4, 9]}))
        assert one == f"1 {what} (ids 7–7)"
        assert many == f"3 {what}s (ids 3–9)"
