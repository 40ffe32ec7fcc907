"""The Airflow home `dynosaur airflow standalone` prepares: its airflow.cfg says what it runs, so
the `airflow` CLI used by hand on it (``AIRFLOW_HOME=<home> airflow ...``) sees our DAGs and no
examples, with no other variable set."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dynosaur.airflow.setup import airflow_env, dags_folder, write_config
from tests.conftest import command_env

pytestmark = pytest.mark.airflow


def _get(home: Path, section: str, key: str) -> str:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "config", "get-value", section, key],
        env=command_env(AIRFLOW_HOME=str(home)),
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


def test_the_homes_airflow_cfg_matches_what_it_runs(tmp_path: Path) -> None:
    home = tmp_path / "airflow"
    # An airflow.cfg Airflow wrote on its own first (examples on, its default dags folder) is
    # corrected, and what else it holds is kept.
    home.mkdir()
    (home / "airflow.cfg").write_text(
        "[core]\nload_examples = True\ndags_folder = /somewhere/else\nparallelism = 7\n"
    )
    write_config(home, airflow_env(home, paused=True))
    assert _get(home, "core", "load_examples") == "False"
    assert _get(home, "core", "dags_folder") == str(dags_folder())
    assert _get(home, "core", "dags_are_paused_at_creation") == "True"
    assert _get(home, "database", "sql_alchemy_conn") == f"sqlite:///{home / 'airflow.db'}"
    assert _get(home, "core", "parallelism") == "7"
