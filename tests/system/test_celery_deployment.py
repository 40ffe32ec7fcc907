"""System test: the growth DAG on a real Airflow deployment with the CeleryExecutor.

Real scheduler, dag-processor, api-server and two Celery workers on this machine; Redis on
127.0.0.1:6379 is the broker, Postgres holds Airflow's metadata; the Hub and LLM emulators serve
on loopback. The run is triggered through the REST API, like a user of the web UI would.
"""

from __future__ import annotations

import json
import socket
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import REPO, pointed_at
from tests.system.cluster import (
    PARSE_S,
    RUN_S,
    START_S,
    airflow_cluster,
    wait_for_dag,
    wait_for_run,
    wait_for_triggered_run,
)

# Loaded-machine safe: generous polling waits (see tests/system/cluster.py) within this limit.
pytestmark = [
    pytest.mark.system,
    pytest.mark.airflow,
    pytest.mark.timeout(START_S + PARSE_S + 3 * RUN_S + 300),
]

REDIS = ("127.0.0.1", 6379)


def _redis_up() -> bool:
    try:
        with socket.create_connection(REDIS, timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture
def redis_url() -> str:
    if not _redis_up():
        pytest.skip("no Redis on 127.0.0.1:6379 (the CeleryExecutor's broker)")
    return "redis://127.0.0.1:6379/5"


def test_growth_dag_runs_on_two_celery_workers(
    databases, settings, redis_url, tmp_path: Path
) -> None:
    from dynosaur.airflow.setup import connection_env
    from dynosaur.emulators.hub import HubEmulator
    from dynosaur.emulators.llm import LLMEmulator
    from dynosaur.model import parse_utc

    metadata_url = databases.create("airflow_meta")  # SQLAlchemy URL (psycopg2 driver)
    store_url = databases.create("system_store")
    with (
        HubEmulator(now=parse_utc("2024-03-03T00:00:00")) as hub,
        LLMEmulator() as llm,
    ):
        deployed = pointed_at(settings, hub, llm).model_copy(update={"database_url": store_url})
        env = {
            **connection_env(deployed),
            "DYNOSAUR_READER_ROLE": settings.reader_role,
            "DYNOSAUR_DATA_DIR": str(tmp_path / "data"),
            "DYNOSAUR_EXPORT_DIR": str(tmp_path / "exports"),
        }
        with airflow_cluster(
            airflow_bin=Path(sys.executable).parent / "airflow",
            dags_folder=REPO / "dags",
            metadata_url=metadata_url,
            redis_url=redis_url,
            home=tmp_path / "airflow",
            extra_env=env,
        ) as cluster:
            client = cluster.client()
            wait_for_dag(client, "dynosaur_growth", time.monotonic() + PARSE_S)
            answer = client.post(
                "/dags/dynosaur_growth/dagRuns",
                json={
                    "logical_date": None,
                    "conf": {
                        "window_start": "2024-03-02T00:00:00+00:00",
                        "window_end": "2024-03-03T00:00:00+00:00",
                        "chunk_size": 2,
                    },
                },
            )
            assert answer.status_code == 200, answer.text
            run_id = answer.json()["dag_run_id"]
            state = wait_for_run(client, "dynosaur_growth", run_id, time.monotonic() + RUN_S)
            tis = client.get(
                f"/dags/dynosaur_growth/dagRuns/{run_id}/taskInstances", params={"limit": 200}
            ).json()["task_instances"]
            # The publish step's asset event makes the scheduler run the consumers.
            consumers = {}
            if state == "success":
                for dag_id in ("dynosaur_export", "dynosaur_select"):
                    consumers[dag_id] = wait_for_triggered_run(
                        client, dag_id, time.monotonic() + RUN_S
                    )["state"]
            logs = cluster.log_text()

    failed = [(t["task_id"], t.get("map_index"), t["state"]) for t in tis if t["state"] == "failed"]
    assert state == "success", f"run ended {state}; failed tasks: {failed}"
    hosts = {t["hostname"] for t in tis if t["state"] == "success"}
    assert {"worker1", "worker2"} <= hosts, f"tasks ran on {hosts}"
    assert "runs on worker worker1" in logs and "runs on worker worker2" in logs
    engine = sa.create_engine(store_url)
    with engine.connect() as conn:
        versions = conn.execute(
            sa.text("SELECT version, instances FROM batch_summary WHERE status = 'published'")
        ).all()
    engine.dispose()
    assert len(versions) == 1 and versions[0].version == 1 and versions[0].instances > 0
    assert consumers == {"dynosaur_export": "success", "dynosaur_select": "success"}
    exported = [json.loads(line) for line in next((tmp_path / "exports" / "v1").glob("*.jsonl"))
                .read_text().splitlines()]  # fmt: skip
    assert len(exported) == versions[0].instances
