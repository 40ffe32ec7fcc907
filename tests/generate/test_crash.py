"""A hard crash mid-run (SIGKILL of a child running ``dynosaur generate``) loses no paid answer:
the next run completes the work and sends none of the calls that had succeeded before the kill.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dynosaur.settings import Settings
from tests.generate.conftest import insert_configs

CONFIGS = 60
CONCURRENCY = 4
KILL_AFTER = 12  # succeeded calls recorded before the kill


def _child_env(settings: Settings, base_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DYNOSAUR_")}
    env.update(
        {
            "DYNOSAUR_DATABASE_URL": str(settings.database_url),
            "DYNOSAUR_READER_ROLE": settings.reader_role,
            "DYNOSAUR_DATA_DIR": str(settings.data_dir),
            "DYNOSAUR_LLM_BASE_URL": base_url,
            "DYNOSAUR_LLM_MODEL": "gpt-4o-mini",
            "DYNOSAUR_LLM_CONCURRENCY": str(CONCURRENCY),
            "DYNOSAUR_LLM_TIMEOUT_S": "30",
        }
    )
    return env


def _generate(env: dict[str, str], log: Path) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "dynosaur.cli.main",
        "generate",
        "--budget",
        "-1",
        "--run-key",
        "crash-test",
    ]
    return subprocess.Popen(command, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)


def _messages_sha256(messages: list) -> str:
    # The emulator's request identity (dynosaur.emulators.llm.messages_sha256).
    return hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()


def _ledger(engine: Engine) -> dict[str, set[str]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT status, messages FROM llm_call")).all()
    out: dict[str, set[str]] = {"succeeded": set(), "in_flight": set(), "failed": set()}
    for row in rows:
        out[row.status].add(_messages_sha256(row.messages))
    return out


def test_sigkill_mid_run_then_rerun_completes_without_resending_succeeded_calls(
    store: Engine, settings: Settings, emulator, tmp_path: Path
) -> None:
    insert_configs(store, CONFIGS)
    request_log = tmp_path / "requests.jsonl"
    llm = emulator(latency=0.2, request_log_path=request_log)
    env = _child_env(settings, llm.base_url)

    child = _generate(env, tmp_path / "first.txt")
    deadline = time.monotonic() + 120
    try:
        while len(_ledger(store)["succeeded"]) < KILL_AFTER:  # poll the store for progress
            assert child.poll() is None, (tmp_path / "first.txt").read_text()
            assert time.monotonic() < deadline, "the child made no progress"
            time.sleep(0.05)
    finally:
        killed_at = time.time()
        child.send_signal(signal.SIGKILL)
        child.wait()
    at_kill = _ledger(store)
    assert KILL_AFTER <= len(at_kill["succeeded"]) < CONFIGS
    # All a hard crash can leave unfinished: the claimed calls (twice the concurrency: claims
    # run ahead of the wire), of which at most CONCURRENCY had been sent.
    assert len(at_kill["in_flight"]) <= 2 * CONCURRENCY

    second = _generate(env, tmp_path / "second.txt")
    assert second.wait(timeout=300) == 0, (tmp_path / "second.txt").read_text()

    with store.connect() as conn:
        states = conn.execute(sa.text("SELECT DISTINCT status FROM dataset_config")).scalars()
        assert set(states) == {"generated"}
    entries = [json.loads(line) for line in request_log.read_text().splitlines()]
    before = [e for e in entries if e["time"] < killed_at]
    after = [e for e in entries if e["time"] >= killed_at]
    answered_before = {e["messages_sha256"] for e in before if e["status"] == 200}
    sent_after = {e["messages_sha256"] for e in after}
    assert after, "the second run sent nothing"
    # No call recorded as succeeded before the kill was sent again.
    assert not sent_after & at_kill["succeeded"]
    # What was answered before the kill and sent again: only calls in flight at the kill.
    assert answered_before & sent_after <= at_kill["in_flight"]
    assert len(answered_before & sent_after) <= CONCURRENCY
    assert len(_ledger(store)["succeeded"]) == CONFIGS
