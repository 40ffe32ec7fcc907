"""The entrypoint of the Airflow services of ``docker-compose.yml``: offline or real, decided
once at start, then Airflow's own entrypoint.

- With the ``emulators`` profile (the ``hub-emulator`` service exists on the network) the
  connections point at the emulators (``DYNOSAUR_OFFLINE_*``) and new DAGs start unpaused:
  nothing leaves the machine, nothing is paid, and no variable needs to be set.
- Without it the connections are the real endpoints the compose file gives, and new DAGs start
  paused: a deployment spends nothing until someone unpauses a DAG.

Usage (the compose file's ``entrypoint``)::

    python -m dynosaur.airflow.compose /usr/bin/dumb-init -- /entrypoint scheduler
"""

from __future__ import annotations

import json
import os
import socket
import sys
from collections.abc import Mapping
from pathlib import Path

from dynosaur.airflow.connections import HUB_CONN_ID, LLM_CONN_ID
from dynosaur.airflow.notes import API_CONN_ID

EMULATOR_HOST = "hub-emulator"
PAUSED = "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"
API_URL = "http://airflow-apiserver:8080"


def emulators_present(host: str = EMULATOR_HOST) -> bool:
    """Whether the emulators' service name resolves (the ``emulators`` profile is up)."""
    try:
        socket.getaddrinfo(host, None)
    except OSError:
        return False
    return True


def api_connection(passwords_file: Path, url: str = API_URL) -> str | None:
    """The ``dynosaur_airflow_api`` connection (run notes through the REST API) as the admin of
    the generated passwords file; None before airflow-init wrote it."""
    try:
        password = json.loads(passwords_file.read_text())["admin"]
    except (OSError, ValueError, KeyError):
        return None
    return json.dumps({"conn_type": "http", "host": url, "login": "admin", "password": password})


def compose_env(environ: Mapping[str, str], *, offline: bool) -> dict[str, str]:
    """The environment Airflow starts with: offline, the emulators' connections and unpaused
    DAGs; otherwise the given (real) connections and paused DAGs. Either way the REST API
    connection for run notes, when the passwords file exists."""
    env = dict(environ)
    passwords = environ.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE")
    if passwords and (api := api_connection(Path(passwords))) is not None:
        env[f"AIRFLOW_CONN_{API_CONN_ID.upper()}"] = api
    if not offline:
        env[PAUSED] = "True"
        env["DYNOSAUR_MODE"] = "real"
        return env
    hub = environ.get("DYNOSAUR_OFFLINE_HUB", "http://hub-emulator:8000")
    llm = environ.get("DYNOSAUR_OFFLINE_LLM", "http://llm-emulator:8001/v1")
    env[f"AIRFLOW_CONN_{HUB_CONN_ID.upper()}"] = json.dumps(
        {"conn_type": "generic", "host": hub, "extra": {"viewer_url": hub}}
    )
    env[f"AIRFLOW_CONN_{LLM_CONN_ID.upper()}"] = json.dumps(
        {"conn_type": "generic", "host": llm, "password": "sk-emulator",
         "extra": {"model": environ.get("DYNOSAUR_LLM_MODEL") or "gpt-4o-mini"}}
    )  # fmt: skip
    env[PAUSED] = "False"
    env["DYNOSAUR_MODE"] = "offline"
    return env


def main(argv: list[str]) -> None:
    if not argv:
        raise SystemExit("usage: python -m dynosaur.airflow.compose COMMAND [ARGS...]")
    offline = emulators_present()
    env = compose_env(os.environ, offline=offline)
    print(
        f"dynosaur: {'offline (emulators)' if offline else 'real endpoints, DAGs start paused'}",
        file=sys.stderr,
        flush=True,
    )
    os.execvpe(argv[0], argv, env)


if __name__ == "__main__":
    main(sys.argv[1:])
