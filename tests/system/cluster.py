"""A real Airflow deployment on this machine for system tests.

api-server + scheduler + dag-processor + two Celery workers (CeleryExecutor), Redis as the broker,
Postgres as the metadata database and Celery result backend. Each worker reports its own host
name (``[core] hostname_callable``) so a test can tell which worker ran which task.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent

# How long a system test waits for Airflow, at most. Generous on purpose: on a loaded machine
# (two cores, another test run beside this one) starting the components, parsing the DAG files
# and running tasks take many times longer than on an idle one; a slow machine is not a failure.
# Every wait polls for its condition and returns as soon as it holds, so an idle machine pays
# nothing for these margins.
START_S = 600  # metadata database migrated, api-server answering
PARSE_S = 600  # the dag-processor has parsed a DAG file
RUN_S = 1200  # a DAG run finished


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def worker_hostname() -> str:
    """``[core] hostname_callable`` for the workers: the name given in the environment."""
    return os.environ.get("DYNOSAUR_TEST_WORKER_NAME") or socket.getfqdn()


@dataclass
class Cluster:
    """Handles on a running deployment."""

    home: Path
    api_url: str
    env: dict[str, str]
    queue: str
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def client(self) -> httpx.Client:
        """An authenticated client for the REST API (/api/v2)."""
        token = httpx.post(
            f"{self.api_url}/auth/token", json={"username": "admin", "password": "admin"}
        )
        headers = {}
        if token.status_code in (200, 201):
            headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        return httpx.Client(base_url=f"{self.api_url}/api/v2", headers=headers, timeout=30)

    def log_text(self) -> str:
        """Every task log file written so far, concatenated."""
        logs = self.home / "logs"
        return "\n".join(p.read_text(errors="replace") for p in sorted(logs.rglob("*.log")))

    def process_output(self, name: str) -> str:
        """What one component printed (its stdout+stderr file)."""
        return (self.home / f"{name}.out").read_text(errors="replace")


def wait_for_http(url: str, proc: subprocess.Popen, deadline: float) -> None:
    """Poll ``url`` until it answers below 500; fail at once if ``proc`` (its server) exited."""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process for {url} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)  # polling a server that is starting, not timing a result
    raise TimeoutError(f"{url} did not answer in time")


@contextmanager
def airflow_cluster(
    *,
    airflow_bin: Path,
    dags_folder: Path,
    metadata_url: str,
    redis_url: str,
    home: Path,
    extra_env: dict[str, str] | None = None,
    workers: int = 2,
    start_timeout: float = START_S,
) -> Iterator[Cluster]:
    """Start the deployment, yield it, stop every process (also on failure)."""
    port = free_port()
    queue = f"dynosaur_system_{uuid.uuid4().hex[:8]}"
    api_url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": "cluster.worker_hostname",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api_url}/execution/",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url,
        "AIRFLOW__CELERY__BROKER_URL": redis_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + metadata_url.replace("+psycopg2", ""),
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
        "AIRFLOW__OPERATORS__DEFAULT_QUEUE": queue,
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API_AUTH__JWT_SECRET": uuid.uuid4().hex,
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])),
        **(extra_env or {}),
    }
    home.mkdir(parents=True, exist_ok=True)
    (home / "passwords.json").write_text('{"admin": "admin"}')
    cluster = Cluster(home=home, api_url=api_url, env=env, queue=queue)
    airflow = str(airflow_bin)

    def start(name: str, *args: str, **env_extra: str) -> subprocess.Popen:
        out = open(home / f"{name}.out", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [airflow, *args],
            env={**env, **env_extra},
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        cluster.processes[name] = proc
        return proc

    try:
        subprocess.run(
            [airflow, "db", "migrate"], env=env, check=True, capture_output=True, timeout=START_S
        )
        subprocess.run(
            [airflow, "pools", "set", "llm", "4", "LLM calls"],
            env=env,
            check=True,
            capture_output=True,
            timeout=START_S,
        )
        deadline = time.monotonic() + start_timeout
        api = start("api-server", "api-server", "--port", str(port))
        wait_for_http(f"{api_url}/api/v2/monitor/health", api, deadline)
        start("scheduler", "scheduler")
        start("dag-processor", "dag-processor")
        for i in range(1, workers + 1):
            start(
                f"worker{i}",
                "celery",
                "worker",
                "--celery-hostname",
                f"worker{i}@%h",
                "--queues",
                queue,
                "--concurrency",
                "2",
                DYNOSAUR_TEST_WORKER_NAME=f"worker{i}",
                AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(free_port()),
            )
        yield cluster
    finally:
        for proc in cluster.processes.values():
            stop_group(proc, wait=False)
        for proc in cluster.processes.values():
            stop_group(proc)


def stop_group(proc: subprocess.Popen, *, wait: bool = True, grace_s: float = 90) -> None:
    """SIGTERM the process group a test started (``start_new_session``); with ``wait``, wait for
    it to end, then SIGKILL the group if it is still there after ``grace_s``."""
    if proc.poll() is None:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    if not wait:
        return
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def wait_for_dag(client: httpx.Client, dag_id: str, deadline: float) -> dict[str, Any]:
    """Poll until the dag-processor has parsed ``dag_id``; return its JSON."""
    while time.monotonic() < deadline:
        answer = client.get(f"/dags/{dag_id}")
        if answer.status_code == 200:
            return answer.json()
        time.sleep(1)  # polling for the parser, not timing a result
    raise TimeoutError(f"DAG {dag_id} was not parsed in time")


def wait_for_run(client: httpx.Client, dag_id: str, run_id: str, deadline: float) -> str:
    """Poll a DAG run until it finishes; return its final state."""
    state = "queued"
    while time.monotonic() < deadline:
        state = client.get(f"/dags/{dag_id}/dagRuns/{run_id}").json()["state"]
        if state in ("success", "failed"):
            return state
        time.sleep(1)  # polling for the scheduler, not timing a result
    raise TimeoutError(f"run {run_id} of {dag_id} still {state}")


def wait_for_triggered_run(client: httpx.Client, dag_id: str, deadline: float) -> dict[str, Any]:
    """Poll until ``dag_id`` has a finished run that an asset event triggered; return it."""
    while time.monotonic() < deadline:
        runs = client.get(f"/dags/{dag_id}/dagRuns", params={"run_type": "asset_triggered"})
        for run in runs.json().get("dag_runs", []):
            if run["state"] in ("success", "failed"):
                return run
        time.sleep(1)  # polling for the scheduler, not timing a result
    raise TimeoutError(f"no asset-triggered run of {dag_id} finished in time")


if __name__ == "__main__":  # pragma: no cover - manual use
    sys.exit("import this module from tests")
