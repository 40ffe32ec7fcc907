"""The whole run against the emulated Hub and LLM: two simulated days give versions 1 and 2, the
same day again adds nothing, and a crash between curate and publish leaves version 1 the latest."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from dynosaur.emulators.hub import HubEmulator
from dynosaur.emulators.llm import LLMEmulator
from dynosaur.pipeline import grow, request_for
from dynosaur.settings import Settings
from dynosaur.store import batches
from tests.curate.factory import cli_environment, live_settings

COUNTED = ("hub_dataset", "dataset_config", "generation", "llm_call", "task", "instance", "batch")


@pytest.fixture
def hub() -> Iterator[HubEmulator]:
    with HubEmulator() as emulator:
        yield emulator


@pytest.fixture
def llm() -> Iterator[LLMEmulator]:
    with LLMEmulator(invalid_share=0.2, seed=3) as emulator:
        yield emulator


@pytest.fixture
def live(settings: Settings, hub: HubEmulator, llm: LLMEmulator) -> Settings:
    return live_settings(settings, hub, llm, llm_backoff_s=0.01)


def day(hub: HubEmulator, date: str) -> dict:
    """What `dynosaur grow --day DATE` asks for, with the emulated Hub's clock after that day."""
    hub.now = datetime.fromisoformat(date + "T23:59:59+00:00")
    return {"day": date}


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one() for t in COUNTED}


def test_two_days_give_versions_1_and_2_and_the_same_day_again_adds_nothing(
    live: Settings, store: Engine, hub: HubEmulator, llm: LLMEmulator
) -> None:
    first = grow(live, store, request_for(**day(hub, "2024-03-01")))
    assert (first["status"], first["version"]) == ("published", 1)
    assert first["datasets"] == 4 and first["instances"] > 0
    with store.connect() as conn:
        day_one = set(conn.execute(sa.text("SELECT DISTINCT dataset_id FROM collection")).scalars())
    assert day_one == {
        "dynosaur-fixtures/squad-like",
        "dynosaur-fixtures/anli-like",
        "dynosaur-fixtures/mathqa-like",
        "dynosaur-fixtures/commongen-like",
    }

    second = grow(live, store, request_for(**day(hub, "2024-03-02")))
    assert (second["status"], second["version"]) == ("published", 2)
    with store.connect() as conn:
        added = set(
            conn.execute(
                sa.text("SELECT DISTINCT dataset_id FROM collection WHERE version = 2")
            ).scalars()
        )
    assert added and not added & day_one  # only the second day's datasets

    before, calls = counts(store), len(llm.request_log)
    again = grow(live, store, request_for(**day(hub, "2024-03-01")))
    assert again["already_done"] and again["version"] == 1
    assert counts(store) == before and len(llm.request_log) == calls


def test_injected_invalid_tasks_are_rejected_with_their_reason(
    live: Settings, store: Engine, hub: HubEmulator, llm: LLMEmulator
) -> None:
    hub.now = datetime.fromisoformat("2024-03-05T00:00:00+00:00")
    grow(live, store, request_for(since="2024-03-01", until="2024-03-05"))
    injected = [kind for entry in llm.request_log for kind in entry["outcome"].get("invalid", [])]
    assert injected, "the emulator injected no invalid task: raise invalid_share"
    expected = {
        "unknown_field": "unknown_field",
        "output_in_inputs": "input_is_output",
        "empty_output": "empty_output_field",
    }
    with store.connect() as conn:
        rejected = dict(
            conn.execute(
                sa.text("SELECT reason, count(*) FROM task WHERE status = 'rejected' GROUP BY 1")
            ).all()
        )
    for kind, reason in expected.items():
        assert rejected.get(reason, 0) >= injected.count(kind), (kind, rejected)


CRASH_AFTER_CURATE = """
import json, os, signal, sys
from dynosaur.pipeline import (begin_run, collect_step, curate_step, discover_step,
                               generate_queue_step, generate_step, request_for)
from dynosaur.settings import Settings
from tests.curate.factory import cli_environment, live_settings
from dynosaur.store import open_store

settings = Settings.model_validate_json(sys.argv[1])
engine = open_store(settings)
req = request_for(day="2024-03-02")
batch = begin_run(engine, req).batch_id
collect_step(settings, engine, discover_step(settings, engine, req))
generate_step(settings, engine, generate_queue_step(settings, engine, req), req)
curate_step(settings, engine, req, batch)
os.kill(os.getpid(), signal.SIGKILL)  # the worker dies before publish
"""


def test_a_crash_between_curate_and_publish_leaves_version_1_the_latest(
    live: Settings, store: Engine, hub: HubEmulator
) -> None:
    grow(live, store, request_for(**day(hub, "2024-03-01")))
    day(hub, "2024-03-02")
    payload = live.model_dump_json()
    payload = json.dumps({**json.loads(payload), "llm_api_key": "sk-test"})
    child = subprocess.run(
        [sys.executable, "-c", CRASH_AFTER_CURATE, payload],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
        timeout=300,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert batches.latest_version(store) == 1
    with store.connect() as conn:
        visible = conn.execute(sa.text("SELECT max(version) FROM collection")).scalar_one()
        building = conn.execute(
            sa.text(
                "SELECT count(*) FROM instance i JOIN batch b ON b.id = i.batch_id "
                "WHERE b.status = 'building'"
            )
        ).scalar_one()
    assert visible == 1 and building > 0  # curated rows exist but are not visible
    finished = grow(live, store, request_for(**day(hub, "2024-03-02")))
    assert (finished["status"], finished["version"]) == ("published", 2)
    assert finished["instances"] == building


def test_grow_command_prints_the_run_and_status_shows_the_versions(
    live: Settings, store: Engine, hub: HubEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    from dynosaur.cli.main import app

    cli_environment(monkeypatch, live)
    env = {
        "DYNOSAUR_HUB_ENDPOINT": live.hub_endpoint,
        "DYNOSAUR_VIEWER_URL": live.viewer_url,
        "DYNOSAUR_LLM_BASE_URL": live.llm_base_url,
        "DYNOSAUR_LLM_API_KEY": "sk-test",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("DYNOSAUR_BUDGET_USD", raising=False)  # no cap
    runner = CliRunner()
    day(hub, "2024-03-01")
    result = runner.invoke(app, ["grow", "--day", "2024-03-01"])
    assert result.exit_code == 0, result.output
    assert "window:2024-03-01" in result.output and "published" in result.output
    status = runner.invoke(app, ["status"])
    assert status.exit_code == 0 and "latest version: 1" in status.output
    out = tmp_path / "v1.jsonl"
    exported = runner.invoke(app, ["export", "--version", "1", "--out", str(out)])
    assert exported.exit_code == 0, exported.output
    assert len(out.read_text().splitlines()) == counts(store)["instance"]
    bad = runner.invoke(app, ["export", "--version", "9", "--out", str(out)])
    assert bad.exit_code == 1 and "version 9 does not exist" in bad.output
    assert "sk-test" not in result.output + status.output
