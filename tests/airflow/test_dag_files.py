"""The DAG files: they import cleanly, use Airflow 3 imports only, and stay thin."""

from __future__ import annotations

import ast
import json
import subprocess
import sys

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
        "mark_failed",
    }
    # mark_failed runs last, whatever happened, and does not decide the run's state.
    assert tasks["mark_failed"].is_teardown and not tasks["mark_failed"].on_failure_fail_dagrun
    assert set(tasks["mark_failed"].upstream_task_ids) == set(tasks) - {"mark_failed"}
    assert tasks["generate"].pool == "llm"
    assert tasks["collect"].is_mapped and tasks["generate"].is_mapped
    assert dag.catchup is False
    assert type(dag.timetable).__name__ == "CronDataIntervalTimetable"
    assert all(p.description for p in dag.params.values()), "every trigger-form field is explained"
    assert dag.doc_md and "version" in dag.doc_md
    assert [o.name for o in tasks["publish"].outlets] == ["dynosaur_instructions"]
