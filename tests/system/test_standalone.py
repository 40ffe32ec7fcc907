"""System test: ``dynosaur airflow standalone`` as a user starts it, then a run from the REST API.

The command prepares the Airflow home (metadata database, ``llm`` pool), starts the emulators
(no real endpoint is configured) and ``airflow standalone``; the test logs in with the generated
admin password, finds the three DAGs, and triggers the growth DAG with explicit dataset ids.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from dynosaur.settings import Settings
from tests.conftest import command_env
from tests.system.cluster import (
    PARSE_S,
    RUN_S,
    START_S,
    free_port,
    stop_group,
    wait_for_dag,
    wait_for_http,
    wait_for_run,
)

# Loaded-machine safe: the waits below (cluster.START_S, PARSE_S, RUN_S) are generous and each
# polls for its condition; the test's own limit covers all of them.
pytestmark = [
    pytest.mark.system,
    pytest.mark.airflow,
    pytest.mark.timeout(START_S + 3 * PARSE_S + RUN_S + 300),
]


def test_standalone_serves_our_dags_with_pool_login_and_offline_connections(
    databases, settings: Settings, tmp_path: Path
) -> None:
    store_url = databases.create("standalone_store")
    port, home = free_port(), tmp_path / "airflow"
    env = command_env(
        DYNOSAUR_DATABASE_URL=store_url,
        DYNOSAUR_READER_ROLE=settings.reader_role,
        DYNOSAUR_DATA_DIR=str(tmp_path / "data"),
        AIRFLOW__API__HOST="127.0.0.1",
        AIRFLOW__API_AUTH__JWT_SECRET="standalone-test",
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{port}/execution/",
        # A loaded machine parses slowly: let a DAG file take its time rather than time out.
        AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT="300",
        AIRFLOW__DAG_PROCESSOR__DAG_FILE_PROCESSOR_TIMEOUT="360",
    )
    out = (tmp_path / "standalone.out").open("wb")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "dynosaur"), "airflow", "standalone",
         "--home", str(home), "--port", str(port)],
        env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        health = f"http://127.0.0.1:{port}/api/v2/monitor/health"
        wait_for_http(health, proc, time.monotonic() + START_S)
        password = json.loads((home / "passwords.json").read_text())["admin"]
        assert password != "admin" and len(password) >= 12
        token = httpx.post(
            f"http://127.0.0.1:{port}/auth/token",
            json={"username": "admin", "password": password},
        )
        assert token.status_code in (200, 201), token.text
        client = httpx.Client(
            base_url=f"http://127.0.0.1:{port}/api/v2",
            headers={"Authorization": f"Bearer {token.json()['access_token']}"},
            timeout=30,
        )
        for dag_id in ("dynosaur_growth", "dynosaur_export", "dynosaur_select"):
            wait_for_dag(client, dag_id, time.monotonic() + PARSE_S)
        assert client.get("/pools/llm").json()["slots"] == 4
        answer = client.post(
            "/dags/dynosaur_growth/dagRuns",
            json={"logical_date": None, "conf": {"dataset_ids": ["dynosaur-fixtures/squad-like"]}},
        )
        assert answer.status_code == 200, answer.text
        run_id = answer.json()["dag_run_id"]
        state = wait_for_run(client, "dynosaur_growth", run_id, time.monotonic() + RUN_S)
        # The success callback (in the dag processor) writes the run's note through the API.
        note, deadline = "", time.monotonic() + PARSE_S
        while not note and state == "success" and time.monotonic() < deadline:
            note = client.get(f"/dags/dynosaur_growth/dagRuns/{run_id}").json().get("note") or ""
            time.sleep(1)  # polling for the dag processor, not timing a result
    finally:
        stop_group(proc)
        out.close()
    printed = (tmp_path / "standalone.out").read_text(errors="replace")
    assert state == "success", printed[-3000:]
    assert f"login: admin / {password}" in printed
    assert "sk-emulator" not in printed  # the connection's key is passed, never printed
    engine = sa.create_engine(store_url)
    with engine.connect() as conn:
        published = (
            conn.execute(sa.text("SELECT dataset_id FROM collection GROUP BY dataset_id"))
            .scalars()
            .all()
        )
    engine.dispose()
    assert published == ["dynosaur-fixtures/squad-like"]
    assert note.startswith("**Version 1 published**"), printed[-3000:]
    assert "report: `" in note and "/v1/report.html`" in note
