"""A three-day backfill of the growth DAG whose runs go in parallel (as Airflow runs them: a
backfill's own max-active-runs overrides the DAG's) gives three versions, each with exactly its
day's datasets (issue 12).

Each day is one run of the real ``dynosaur_growth`` DAG (``dag.test()`` for its logical date,
every task of it, teardown included) in its own process, the three processes at once against
the one store and the same emulators, as three workers of one deployment would run them. Each
process has its own copy of a migrated Airflow metadata database (SQLite takes one writer at a
time). The emulated Hub holds the first requests until all three runs are discovering at once.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dynosaur.airflow.setup import connection_env
from dynosaur.emulators.hub import HubEmulator
from dynosaur.emulators.llm import LLMEmulator
from dynosaur.settings import Settings
from tests.conftest import REPO, command_env, pointed_at

pytestmark = pytest.mark.airflow

DAYS = ("2024-03-01", "2024-03-02", "2024-03-03")

# One DAG run for one logical date, in a process of its own; prints its state and its tasks'.
RUN_ONE_DAY = """
import json, sys
from datetime import datetime
from airflow.dag_processing.dagbag import DagBag

bag = DagBag(dag_folder=sys.argv[1])
assert bag.import_errors == {}, bag.import_errors
dag = bag.dags["dynosaur_growth"]
for task in dag.tasks:
    task.retries = 0  # dag.test() would sleep through real retry delays
run = dag.test(logical_date=datetime.fromisoformat(sys.argv[2]))
tasks = {f"{ti.task_id}[{ti.map_index}]": ti.state for ti in run.get_task_instances()}
print("RUN=" + json.dumps({"state": run.state, "tasks": tasks}))
"""


def airflow_env(home: Path) -> dict[str, str]:
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
    }


def logical_date(day: str) -> str:
    """A CronDataIntervalTimetable run's logical date is the end of its interval (Airflow 3)."""
    return f"{day[:-2]}{int(day[-2:]) + 1:02d}T00:00:00+00:00"


def test_a_parallel_three_day_backfill_of_the_dag_gives_three_versions_each_with_its_day(
    settings: Settings, store: Engine, tmp_path: Path
) -> None:
    base = tmp_path / "airflow"
    base.mkdir()
    airflow = Path(sys.executable).parent / "airflow"
    subprocess.run([str(airflow), "db", "migrate"], check=True, capture_output=True,
                   timeout=600, env=command_env(**airflow_env(base)))  # fmt: skip
    with HubEmulator() as hub, LLMEmulator(seed=3) as llm:
        hub.now = "2024-03-03T23:59:59+00:00"  # the backfill runs after the three days
        hub.hold(len(DAYS))  # the first requests wait until all three runs are discovering
        deployment = {
            **connection_env(pointed_at(settings, hub, llm)),
            "DYNOSAUR_READER_ROLE": settings.reader_role,
            "DYNOSAUR_DATA_DIR": str(tmp_path / "data"),
            "DYNOSAUR_EXPORT_DIR": str(tmp_path / "exports"),
            "DYNOSAUR_LLM_BACKOFF_S": "0.01",
            "PYTHONPATH": str(REPO),
        }
        runs = []
        for day in DAYS:
            home = tmp_path / f"airflow-{day}"
            home.mkdir()
            shutil.copy(base / "airflow.db", home / "airflow.db")
            runs.append(
                subprocess.Popen(
                    [sys.executable, "-c", RUN_ONE_DAY, str(REPO / "dags"), logical_date(day)],
                    env=command_env(**deployment, **airflow_env(home)),
                    cwd=REPO,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
            )
        outputs = [run.communicate(timeout=600)[0] for run in runs]
        peak = hub.peak_in_flight
    results = []
    for day, out in zip(DAYS, outputs, strict=True):
        line = [x for x in out.splitlines() if x.startswith("RUN=")]
        assert line, f"{day}: {out[-3000:]}"
        results.append(json.loads(line[-1].removeprefix("RUN=")))
    for day, result in zip(DAYS, results, strict=True):
        assert result["state"] == "success", (day, result["tasks"])
        assert result["tasks"]["publish[-1]"] == "success", (day, result["tasks"])
    assert peak >= len(DAYS)  # the three runs were discovering at the same time

    with store.connect() as conn:
        versions = conn.execute(
            sa.text(
                "SELECT (window_start AT TIME ZONE 'UTC')::date::text, version FROM batch "
                "WHERE status = 'published'"
            )
        ).all()
        published = conn.execute(
            sa.text("SELECT DISTINCT version, dataset_id FROM collection")
        ).all()
        owned = conn.execute(
            sa.text(
                "SELECT b.window_start, b.window_end, d.created_at FROM hub_dataset d "
                "JOIN batch b ON b.id = d.batch_id"
            )
        ).all()
        created = dict(
            conn.execute(
                sa.text(
                    "SELECT DISTINCT dataset_id, (created_at AT TIME ZONE 'UTC')::date::text "
                    "FROM hub_dataset"
                )
            ).all()
        )
    by_day = dict(versions)
    assert sorted(by_day) == list(DAYS) and sorted(by_day.values()) == [1, 2, 3]
    in_version: dict[int, set[str]] = {}
    for version, dataset_id in published:
        in_version.setdefault(version, set()).add(dataset_id)
    everything = set().union(*in_version.values())
    for day in DAYS:
        # Every dataset of the day that made it into the collection is in the day's version,
        # and nothing else is (no other day's dataset, nothing twice).
        own = {d for d in everything if created[d] == day}
        assert own, day
        assert in_version[by_day[day]] == own, day
    # Every dataset the Hub shows for those days was stored, each by the run of its day.
    shown = {d for d, e in hub.snapshot.entries.items() if e.created_at.date().isoformat() in DAYS}
    assert shown == set(created)
    # Every dataset row belongs to the run whose window it was discovered in.
    assert len(owned) == len(created)
    assert all(start <= at < end for start, end, at in owned)
