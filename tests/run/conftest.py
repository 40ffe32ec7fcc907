"""Fixtures of the run tests: the emulated Hub and LLM, and a way to run ``dynosaur`` as a user
does (a separate process, its stderr as they would read it)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime

import pytest

from dynosaur.emulators.hub import HubEmulator
from dynosaur.emulators.llm import LLMEmulator
from dynosaur.settings import Settings
from tests.conftest import REPO, command_env
from tests.curate.factory import live_settings


@pytest.fixture
def hub() -> Iterator[HubEmulator]:
    with HubEmulator() as emulator:
        yield emulator


@pytest.fixture
def llm() -> Iterator[LLMEmulator]:
    with LLMEmulator(seed=3) as emulator:
        yield emulator


@pytest.fixture
def live(settings: Settings, hub: HubEmulator, llm: LLMEmulator) -> Settings:
    return live_settings(settings, hub, llm, llm_backoff_s=0.01, llm_max_retries=1)


def day(hub: HubEmulator, date: str, clock: str | None = None) -> dict:
    """What `dynosaur grow --day DATE` asks for, with the emulated Hub's clock after that day
    (or at ``clock``)."""
    hub.now = datetime.fromisoformat((clock or date) + "T23:59:59+00:00")
    return {"day": date}


def run_cli(settings: Settings, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``dynosaur ARGS`` in a fresh process against the test store (``env`` on top)."""
    base = {
        "PYTHONPATH": str(REPO),
        "DYNOSAUR_DATABASE_URL": settings.database_url or "",
        "DYNOSAUR_READER_ROLE": settings.reader_role,
        "DYNOSAUR_DATA_DIR": str(settings.data_dir),
        "DYNOSAUR_HUB_ENDPOINT": settings.hub_endpoint,
        "DYNOSAUR_VIEWER_URL": settings.viewer_url,
        "DYNOSAUR_LLM_BASE_URL": settings.llm_base_url,
        "DYNOSAUR_LLM_API_KEY": "sk-test",
        "DYNOSAUR_LLM_BACKOFF_S": "0.01",
        "DYNOSAUR_LLM_MAX_RETRIES": "1",
        "DYNOSAUR_BUDGET_USD": "",
        "COLUMNS": "200",
    }
    return subprocess.run(
        [sys.executable, "-m", "dynosaur.cli.main", *args],
        capture_output=True,
        text=True,
        env=command_env(**{**base, **env}),
        cwd=REPO,
        timeout=600,
    )


def error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The lines of stderr that report an error."""
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]
