"""Preparing an Airflow home for our DAGs: configuration, metadata database, pool, connections.

Used by the offline demo (``dag.test`` in this process) and by ``dynosaur airflow standalone``
(Airflow's own processes). Airflow reads its configuration from the environment once, at first
import, so :func:`airflow_env` must be applied before anything imports ``airflow``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from dynosaur.airflow import LLM_POOL
from dynosaur.airflow.connections import HUB_CONN_ID, LLM_CONN_ID, STORE_CONN_ID
from dynosaur.errors import UsageError
from dynosaur.settings import Settings
from dynosaur.store.engine import database_url, libpq_url

# LLM calls in flight across all runs: the slots of the `llm` pool an Airflow home starts with.
LLM_SLOTS = 4


def dags_folder() -> Path:
    """Our DAG files: inside the installed package (wheel), else at the top of a source checkout."""
    package = Path(__file__).resolve().parents[1]  # dynosaur/
    for candidate in (package / "dags", package.parent / "dags"):
        if (candidate / "dynosaur_growth.py").is_file():
            return candidate
    raise UsageError("the DAG files were not found next to the dynosaur package")


def airflow_bin() -> str:
    """The ``airflow`` executable of this environment."""
    beside = Path(sys.executable).parent / "airflow"
    if beside.exists():
        return str(beside)
    raise UsageError("Airflow is not installed here: pip install 'dynosaur[airflow]'")


def airflow_env(home: Path, *, quiet: bool = False, paused: bool = True) -> dict[str, str]:
    """Configuration of a self-contained Airflow home: SQLite metadata, our DAGs, no examples;
    new DAGs start paused unless ``paused`` is False."""
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder()),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": str(paused),
    }
    if quiet:
        env["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING"
    return env


def connection_env(settings: Settings) -> dict[str, str]:
    """``AIRFLOW_CONN_*`` variables for the store, the LLM and the Hub, from ``settings``.

    They live only in the environment of the processes we start (never in a file or log).
    """
    llm: dict[str, object] = {
        "conn_type": "generic",
        "host": settings.llm_base_url,
        "extra": {"model": settings.llm_model},
    }
    if settings.llm_api_key is not None:
        llm["password"] = settings.llm_api_key.get_secret_value()
    hub: dict[str, object] = {
        "conn_type": "generic",
        "host": settings.hub_endpoint,
        "extra": {"viewer_url": settings.viewer_url},
    }
    if settings.hub_token is not None:
        hub["password"] = settings.hub_token.get_secret_value()
    return {
        f"AIRFLOW_CONN_{STORE_CONN_ID.upper()}": libpq_url(database_url(settings)),
        f"AIRFLOW_CONN_{LLM_CONN_ID.upper()}": json.dumps(llm),
        f"AIRFLOW_CONN_{HUB_CONN_ID.upper()}": json.dumps(hub),
    }


def _airflow(args: list[str], env: dict[str, str], what: str) -> None:
    done = subprocess.run(
        [airflow_bin(), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise UsageError(f"{what} failed (airflow {' '.join(args)}): " + " | ".join(tail))


# The options of airflow.cfg that must say what the home runs (the environment sets them too,
# but the `airflow` CLI run by hand on the home reads only the file).
CONFIG_KEYS = (
    ("core", "dags_folder", "AIRFLOW__CORE__DAGS_FOLDER"),
    ("core", "load_examples", "AIRFLOW__CORE__LOAD_EXAMPLES"),
    ("core", "dags_are_paused_at_creation", "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"),
    ("database", "sql_alchemy_conn", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"),
)


def write_config(home: Path, env: dict[str, str]) -> Path:
    """Make ``<home>/airflow.cfg`` match the home's environment (our DAG folder, no examples,
    its metadata database, paused or not), so ``AIRFLOW_HOME=<home> airflow ...`` by hand sees
    the same Airflow. Other options (Airflow's own defaults, a user's edits) are kept."""
    import configparser

    path = home / "airflow.cfg"
    config = configparser.ConfigParser(interpolation=None)
    if path.exists():
        config.read(path, encoding="utf-8")
    for section, key, variable in CONFIG_KEYS:
        if variable in env:
            if not config.has_section(section):
                config.add_section(section)
            config.set(section, key, env[variable])
    home.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        config.write(out)
    return path


def prepare_home(home: Path, env: dict[str, str], *, llm_slots: int = LLM_SLOTS) -> None:
    """Write the home's airflow.cfg, migrate the metadata database and create the ``llm`` pool
    (all idempotent)."""
    home.mkdir(parents=True, exist_ok=True)
    write_config(home, env)
    _airflow(["db", "migrate"], env, "migrating Airflow's metadata database")
    _airflow(
        ["pools", "set", LLM_POOL, str(llm_slots), "LLM calls of dynosaur_growth"],
        env,
        "creating the llm pool",
    )
