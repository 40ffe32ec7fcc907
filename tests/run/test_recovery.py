"""A run that could not do its work does not look done, nothing stays claimed forever, bad ids
leave a row with a reason, and a dead migrator's lock does not block anyone (issue 12)."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dynosaur.emulators.hub import HubEmulator
from dynosaur.errors import RunInProgress
from dynosaur.pipeline import begin_run, grow, request_for, status
from dynosaur.pipeline.run import holder_gone
from dynosaur.settings import Settings
from dynosaur.store import batches, migrations
from tests.run.conftest import day, error_lines, run_cli


def test_an_llm_outage_fails_the_run_loudly_and_the_same_key_completes_it_later(
    live: Settings, store: Engine, hub: HubEmulator
) -> None:
    closed = live.model_copy(update={"llm_base_url": "http://127.0.0.1:9/v1"})
    day(hub, "2024-03-01")
    down = run_cli(closed, "grow", "--day", "2024-03-01")
    assert down.returncode == 1, down.stderr
    assert "Traceback" not in down.stderr + down.stdout
    lines = error_lines(down)
    assert len(lines) == 1 and "LLM endpoint could not be reached" in lines[0], down.stderr
    assert "run the same command again" in lines[0]
    key = request_for(day="2024-03-01").run_key
    after_outage = batches.find_batch(store, key)
    assert after_outage is not None
    assert (after_outage.status, after_outage.reason) == ("failed", "service_unavailable")
    with store.connect() as conn:
        lost = conn.execute(
            sa.text("SELECT count(*) FROM dataset_config WHERE status = 'failed'")
        ).scalar_one()
    assert lost == 0  # no config was given up on

    again = grow(live, store, request_for(day="2024-03-01"))  # the LLM is back
    assert (again["status"], again["version"]) == ("published", 1)
    assert again["instances"] > 0


def test_invalid_and_unknown_ids_are_rejected_rows_with_their_reason(
    live: Settings, store: Engine, hub: HubEmulator
) -> None:
    day(hub, "2024-03-01")
    ids = ["dynosaur-fixtures/squad-like", "not a valid id!", "nobody/no-such-dataset"]
    done = grow(live, store, request_for(ids=ids))
    assert done["status"] == "published"
    with store.connect() as conn:
        rows = dict(conn.execute(sa.text("SELECT dataset_id, reason FROM requested_dataset")).all())
        shown = dict(
            conn.execute(
                sa.text(
                    "SELECT reason, n FROM rejection_by_reason WHERE entity = 'requested_dataset'"
                )
            ).all()
        )
    assert rows == {"not a valid id!": "invalid_id", "nobody/no-such-dataset": "not_found"}
    assert shown == {"invalid_id": 1, "not_found": 1}


def dead_holder() -> str:
    """The holder name of a process of this host that has exited."""
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)  # fmt: skip
    return f"pid:{socket.gethostname()}:{child.stdout.strip()}:1"


def test_a_batch_whose_process_died_is_adopted_by_its_key_and_released_by_others(
    settings: Settings, store: Engine
) -> None:
    mine = request_for(day="2024-03-01")
    other = request_for(day="2024-03-02")
    holder = dead_holder()
    assert holder_gone(holder) and not holder_gone(f"pid:{socket.gethostname()}:{os.getpid()}:")
    first = batches.open_batch(store, mine.run_key, window=mine.window, holder=holder)
    shown = status(store, lease_s=600)
    assert [b.id for b in shown.stale] == [first.id]  # `dynosaur status` shows it

    start = begin_run(store, mine)  # the next run of its key adopts it
    assert start.batch.id == first.id and start.took_over_from == holder
    assert start.batch.status == "building" and start.batch.holder != holder

    # Another key releases it once its holder is gone (here: no heartbeat within the lease).
    with store.begin() as conn:
        conn.execute(
            sa.text("UPDATE batch SET heartbeat_at = now() - interval '1 hour' WHERE id = :b"),
            {"b": first.id},
        )
    started = begin_run(store, other, lease_s=60)
    assert [b.id for b in started.released] == [first.id]
    released = batches.get_batch(store, first.id)
    assert (released.status, released.reason) == ("failed", "run_abandoned")
    assert status(store, lease_s=60).stale == []


def test_a_live_holder_of_the_same_key_is_not_taken_over(store: Engine) -> None:
    req = request_for(day="2024-03-01")
    batches.open_batch(store, req.run_key, holder="pid:another-host:42:7")  # heartbeat now
    with pytest.raises(RunInProgress, match="another-host"):
        begin_run(store, req)


def test_a_dead_migrators_lock_row_blocks_nothing_and_is_broken_with_a_warning(
    settings: Settings, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM yoyo_lock"))
        conn.execute(sa.text("INSERT INTO yoyo_lock (locked, ctime, pid) VALUES (1, now(), 99)"))
    # A command that needs no migration does not even look at the lock.
    result = run_cli(settings, "status", DYNOSAUR_LOCK_TIMEOUT_S="1")
    assert result.returncode == 0, result.stderr
    assert migrations.upgrade(engine, settings.reader_role, lock_timeout_s=1) == []
    # Migrating breaks it (its holder would hold the advisory lock were it alive).
    with caplog.at_level(logging.WARNING, logger="dynosaur.store.migrations"):
        assert migrations._migrate(engine, 5) == []
    assert "broke the migrations lock left by process 99" in caplog.text
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM yoyo_lock")).scalar_one() == 0


def test_mark_failed_works_when_start_failed(
    settings: Settings, store: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dynosaur.airflow import tasks

    run = SimpleNamespace(run_after=datetime(2024, 3, 5, tzinfo=UTC), run_id="manual__x")
    bad = {"params": {"window_start": "yesterday", "window_end": "2024-03-01"}, "dag_run": run}
    tasks.mark_failed(bad)  # an invalid form opened no batch: nothing to do, no crash
    with pytest.raises(Exception, match="invalid run request"):
        tasks.start_run({**bad, "params": {**bad["params"], "chunk_size": 5}})
    good = {"params": {"window_start": "2024-03-01", "window_end": "2024-03-02"}, "dag_run": run}
    monkeypatch.setenv("DYNOSAUR_DATABASE_URL", settings.database_url or "")
    monkeypatch.setenv("DYNOSAUR_READER_ROLE", settings.reader_role)
    tasks.mark_failed(good)  # start never opened the batch: nothing to mark
    with store.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM batch")).scalar_one() == 0
