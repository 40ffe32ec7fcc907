"""A hard crash mid-run (SIGKILL of a child running ``dynosaur generate``) loses no paid answer:
the next run completes the work and sends none of the calls that had succeeded before the kill.

Each run talks to its own LLM emulator, so which run sent a request is read from the request
logs, not guessed from the clock.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy.engine import Engine

from dynosaur.emulators.llm import messages_sha256
from dynosaur.settings import Settings
from tests.generate.conftest import cli_env, insert_configs, rows_of

CONFIGS = 60
CONCURRENCY = 4
KILL_AFTER = 12  # succeeded calls recorded before the kill
# Generous: how long the first run may take to record KILL_AFTER answers on a loaded machine.
PROGRESS_DEADLINE_S = 300


def _generate(settings: Settings, base_url: str, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DYNOSAUR_")}
    env.update(
        cli_env(
            settings,
            base_url,
            DYNOSAUR_LLM_CONCURRENCY=str(CONCURRENCY),
            DYNOSAUR_LLM_TIMEOUT_S="30",
        )
    )
    command = [sys.executable, "-m", "dynosaur.cli.main", "generate", "--budget", "-1"]
    command += ["--run-key", "crash-test"]
    return subprocess.Popen(command, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)


def _ledger(engine: Engine) -> dict[str, set[str]]:
    """The ledger's requests by status, as the emulator identifies them."""
    out: dict[str, set[str]] = {"succeeded": set(), "in_flight": set(), "failed": set()}
    for row in rows_of(engine, "SELECT status, messages FROM llm_call"):
        out[row.status].add(messages_sha256(row.messages))
    return out


def test_sigkill_mid_run_then_rerun_completes_without_resending_succeeded_calls(
    store: Engine, settings: Settings, emulator, tmp_path: Path
) -> None:
    insert_configs(store, CONFIGS)
    first_llm = emulator(latency=0.2)  # answers take a while: calls are in flight at the kill
    child = _generate(settings, first_llm.base_url, tmp_path / "first.txt")
    deadline = time.monotonic() + PROGRESS_DEADLINE_S
    try:
        while len(_ledger(store)["succeeded"]) < KILL_AFTER:  # poll the store for progress
            assert child.poll() is None, (tmp_path / "first.txt").read_text()
            assert time.monotonic() < deadline, "the child made no progress"
            time.sleep(0.05)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    at_kill = _ledger(store)
    assert KILL_AFTER <= len(at_kill["succeeded"]) < CONFIGS
    # All a hard crash can leave unfinished: the claimed calls (claims run ahead of the wire:
    # twice the concurrency) and the answers waiting for the writer (at most the concurrency).
    assert len(at_kill["in_flight"]) <= 3 * CONCURRENCY

    second_llm = emulator()
    second = _generate(settings, second_llm.base_url, tmp_path / "second.txt")
    assert second.wait(timeout=PROGRESS_DEADLINE_S) == 0, (tmp_path / "second.txt").read_text()

    states = rows_of(store, "SELECT DISTINCT status FROM dataset_config")
    assert {s.status for s in states} == {"generated"}
    done = _ledger(store)
    assert len(done["succeeded"]) == CONFIGS and not done["in_flight"] and not done["failed"]
    answered_first = {e["messages_sha256"] for e in first_llm.request_log if e["status"] == 200}
    sent_second = [e["messages_sha256"] for e in second_llm.request_log]
    # The second run sent exactly what the first had not recorded, each request once: no call
    # recorded as succeeded before the kill was sent again.
    assert sorted(sent_second) == sorted(done["succeeded"] - at_kill["succeeded"])
    # What both runs were answered: only calls in flight at the kill (answers the dead child
    # never recorded): at most one per wire slot and one per writer slot.
    assert answered_first & set(sent_second) <= at_kill["in_flight"]
    assert len(answered_first & set(sent_second)) <= 2 * CONCURRENCY
