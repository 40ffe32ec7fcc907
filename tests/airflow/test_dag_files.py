"""The DAG files: they import cleanly, use Airflow 3 imports only, and stay thin."""

from __future__ import annotations

import ast
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


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_dag_files_import_only_airflow_and_pendulum_at_top_level(path) -> None:
    """Heavy imports (our library, pandas...) happen inside tasks, not at parse time."""
    tree = ast.parse(path.read_text())
    top = {
        (node.module or "").split(".")[0] for node in tree.body if isinstance(node, ast.ImportFrom)
    } | {
        alias.name.split(".")[0]
        for node in tree.body
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    assert top <= {"__future__", "airflow", "pendulum", "datetime", "typing"}


def test_growth_dag_shape() -> None:
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(REPO / "dags")).dags["dynosaur_growth"]
    tasks = {t.task_id: t for t in dag.tasks}
    assert {"start", "discover", "collect", "generate", "curate", "publish"} <= set(tasks)
    assert tasks["generate"].pool == "llm"
    assert tasks["collect"].is_mapped and tasks["generate"].is_mapped
    assert dag.catchup is False
    assert type(dag.timetable).__name__ == "CronDataIntervalTimetable"
    assert all(p.description for p in dag.params.values()), "every trigger-form field is explained"
    assert dag.doc_md and "version" in dag.doc_md
    assert [o.name for o in tasks["publish"].outlets] == ["dynosaur_instructions"]
