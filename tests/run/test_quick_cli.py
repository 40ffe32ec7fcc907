"""A quick CLI (issue 15): `dynosaur status` and `dynosaur generate` with nothing to do import
none of the heavy modules (the LLM SDK, datasets, Airflow, torch, pandas)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from sqlalchemy.engine import Engine

from dynosaur.settings import Settings
from tests.conftest import REPO, command_env

HEAVY = ("openai", "datasets", "airflow", "torch", "pandas", "huggingface_hub", "yoyo")
PROBE = """
import atexit, json, sys
heavy = json.loads(sys.argv[1])
atexit.register(lambda: print("HEAVY=" + json.dumps([m for m in heavy if m in sys.modules])))
sys.argv = ["dynosaur", *sys.argv[2:]]
from dynosaur.cli.main import main
main()
"""


@pytest.mark.parametrize("command", [["status"], ["generate"]])
def test_an_idle_command_imports_no_heavy_module(
    settings: Settings, store: Engine, command: list[str]
) -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(HEAVY), *command],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
        env=command_env(
            PYTHONPATH=str(REPO),
            DYNOSAUR_DATABASE_URL=settings.database_url or "",
            DYNOSAUR_READER_ROLE=settings.reader_role,
            DYNOSAUR_DATA_DIR=str(settings.data_dir),
        ),
    )
    assert result.returncode == 0, result.stderr
    if command == ["generate"]:
        assert "no config is waiting" in result.stdout
    line = [x for x in result.stdout.splitlines() if x.startswith("HEAVY=")]
    assert line and json.loads(line[-1].removeprefix("HEAVY=")) == []
