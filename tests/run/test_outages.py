"""A Hub that cannot be reached fails the run loudly, as an LLM outage does, and the failed
batch's reason says what could not be reached, also when the growth DAG's teardown
(``mark_failed``, :func:`dynosaur.pipeline.end_run`) marks it (issue 12)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dynosaur.emulators.hub import HubEmulator
from dynosaur.errors import ServiceUnavailable
from dynosaur.pipeline import begin_run, grow, request_for
from dynosaur.pipeline.run import (
    collect_step,
    discover_step,
    end_run,
    generate_queue_step,
    generate_step,
    unreachable_work,
)
from dynosaur.settings import Settings
from dynosaur.store import batches
from tests.run.conftest import day, error_lines, run_cli

DAY_1 = {
    "dynosaur-fixtures/squad-like",
    "dynosaur-fixtures/anli-like",
    "dynosaur-fixtures/mathqa-like",
    "dynosaur-fixtures/commongen-like",
}
TEARDOWN = "a task of Airflow run scheduled__2024-03-02 failed"


def published_datasets(engine: Engine, version: int) -> set[str]:
    with engine.connect() as conn:
        return set(
            conn.execute(
                sa.text("SELECT DISTINCT dataset_id FROM collection WHERE version = :v"),
                {"v": version},
            ).scalars()
        )


@pytest.mark.parametrize("llm_too", [False, True], ids=["hub_unreachable", "no_network"])
def test_no_network_to_the_hub_is_one_line_naming_the_hub_and_the_batch_says_so(
    live: Settings, store: Engine, hub: HubEmulator, llm_too: bool
) -> None:
    day(hub, "2024-03-01")
    nowhere = "http://127.0.0.1:9"
    closed = live.model_copy(
        update={
            "hub_endpoint": nowhere,
            "viewer_url": nowhere,
            "llm_base_url": f"{nowhere}/v1" if llm_too else live.llm_base_url,
        }
    )
    down = run_cli(closed, "grow", "--day", "2024-03-01", DYNOSAUR_HUB_BACKOFF_S="0.01")
    assert down.returncode == 1, down.stderr
    assert "Traceback" not in down.stderr + down.stdout
    lines = error_lines(down)
    assert len(lines) == 1 and "the Hub could not be reached" in lines[0], down.stderr
    assert "run the same command again" in lines[0]
    batch = batches.find_batch(store, request_for(day="2024-03-01").run_key)
    assert batch is not None
    assert (batch.status, batch.reason) == ("failed", "service_unavailable")
    assert batch.message is not None and "the Hub could not be reached" in batch.message

    again = grow(live, store, request_for(day="2024-03-01"))  # the Hub is back
    assert again["status"] == "published"
    assert published_datasets(store, again["version"]) == DAY_1


def test_a_hub_that_fails_during_collect_fails_the_run_and_the_teardown_names_the_hub(
    live: Settings, store: Engine, hub: HubEmulator
) -> None:
    """As the growth DAG runs it: one step per task, then the teardown ``mark_failed``."""
    settings = live.model_copy(update={"hub_backoff_s": 0.01, "hub_backoff_max_s": 0.02})
    day(hub, "2024-03-01")
    req = request_for(day="2024-03-01")
    batch_id = begin_run(store, req).batch_id
    to_collect = discover_step(settings, store, req, batch_id=batch_id)
    assert len(to_collect) == len(DAY_1)
    hub.configure(rate_5xx=1.0)  # every answer from now on is a 5xx
    with pytest.raises(ServiceUnavailable) as raised:
        collect_step(settings, store, to_collect)
    assert raised.value.service == "hub" and raised.value.deferred == len(DAY_1)

    failed = end_run(store, req, TEARDOWN)
    assert failed is not None
    assert (failed.status, failed.reason) == ("failed", "service_unavailable")
    assert failed.message is not None
    assert "the Hub could not be reached (4 dataset(s) deferred)" in failed.message
    assert "re-running after recovery completes the run" in failed.message

    hub.configure(rate_5xx=0.0)
    again = grow(settings, store, req)  # the same key, right away: nothing waits for a due time
    assert again["status"] == "published"
    assert published_datasets(store, again["version"]) == DAY_1


def test_the_teardown_names_the_llm_endpoint_when_it_could_not_be_reached(
    live: Settings, store: Engine, hub: HubEmulator
) -> None:
    day(hub, "2024-03-01")
    req = request_for(day="2024-03-01")
    batch_id = begin_run(store, req).batch_id
    collect_step(live, store, discover_step(live, store, req, batch_id=batch_id))
    closed = live.model_copy(update={"llm_base_url": "http://127.0.0.1:9/v1"})
    configs = generate_queue_step(closed, store, req, batch_id=batch_id)
    with pytest.raises(ServiceUnavailable):
        generate_step(closed, store, configs, req)

    failed = end_run(store, req, TEARDOWN)
    assert failed is not None
    assert (failed.status, failed.reason) == ("failed", "service_unavailable")
    assert failed.message is not None
    assert "the LLM endpoint could not be reached (4 config(s) deferred)" in failed.message
    assert TEARDOWN in failed.message


def test_the_teardown_says_run_failed_when_no_service_was_unreachable(
    live: Settings, store: Engine, hub: HubEmulator
) -> None:
    day(hub, "2024-03-01")
    req = request_for(day="2024-03-01")
    begin_run(store, req)
    failed = end_run(store, req, TEARDOWN)
    assert failed is not None
    assert (failed.status, failed.reason, failed.message) == ("failed", "run_failed", TEARDOWN)


def test_the_teardown_names_the_hub_when_discovery_could_not_reach_it(
    live: Settings, store: Engine, hub: HubEmulator
) -> None:
    day(hub, "2024-03-01")
    req = request_for(day="2024-03-01")
    batch_id = begin_run(store, req).batch_id
    closed = live.model_copy(update={"hub_endpoint": "http://127.0.0.1:9", "hub_max_retries": 0})
    with pytest.raises(ServiceUnavailable):
        discover_step(closed, store, req, batch_id=batch_id)
    assert unreachable_work(store, batch_id) == {"hub": 0}
    discover_step(live, store, req, batch_id=batch_id)  # an Airflow retry that gets through
    assert unreachable_work(store, batch_id) == {}
    with pytest.raises(ServiceUnavailable):
        discover_step(closed, store, req, batch_id=batch_id)

    failed = end_run(store, req, TEARDOWN)
    assert failed is not None
    assert (failed.status, failed.reason) == ("failed", "service_unavailable")
    assert failed.message is not None
    assert "the Hub could not be reached (discovering the run)" in failed.message


def test_one_dataset_the_hub_cannot_serve_is_a_leftover_the_next_run_adopts(
    live: Settings, store: Engine, hub: HubEmulator
) -> None:
    """A Hub that answers for the other datasets is up: the run publishes them, exit 0, and the
    one it could not serve waits (deferred, retryable) until a later run (another key) takes
    it when it is due."""
    broken = "dynosaur-fixtures/squad-like"
    settings = live.model_copy(update={"hub_backoff_s": 0.01, "hub_backoff_max_s": 0.02})
    hub.configure(unavailable=(broken,))
    day(hub, "2024-03-01")
    first = run_cli(settings, "grow", "--day", "2024-03-01")
    assert first.returncode == 0, first.stderr
    assert "Traceback" not in first.stderr + first.stdout
    version = batches.latest_version(store)
    assert version is not None
    assert published_datasets(store, version) == DAY_1 - {broken}
    with store.begin() as conn:
        waiting = conn.execute(
            sa.text("SELECT status, reason FROM hub_dataset WHERE dataset_id = :d"), {"d": broken}
        ).one()
        assert tuple(waiting) == ("deferred", "hub_error")
        # Time passes: its next attempt is due.
        conn.execute(
            sa.text("UPDATE hub_dataset SET next_attempt_at = now() WHERE dataset_id = :d"),
            {"d": broken},
        )

    hub.configure(unavailable=())
    day(hub, "2024-03-02")
    second = grow(settings, store, request_for(day="2024-03-02"))
    assert second["status"] == "published"
    assert broken in second["adopted"]["datasets"]
    assert broken in published_datasets(store, second["version"])


def test_the_teardown_says_run_failed_when_the_hub_only_missed_a_few_datasets(
    live: Settings, store: Engine, hub: HubEmulator
) -> None:
    """A step that fails for its own reason after collect left one dataset deferred (the Hub was
    up, that one dataset was not) is not a Hub outage."""
    settings = live.model_copy(update={"hub_backoff_s": 0.01, "hub_backoff_max_s": 0.02})
    hub.configure(unavailable=("dynosaur-fixtures/squad-like",))
    day(hub, "2024-03-01")
    req = request_for(day="2024-03-01")
    batch_id = begin_run(store, req).batch_id
    collect_step(settings, store, discover_step(settings, store, req, batch_id=batch_id))
    assert unreachable_work(store, batch_id) == {}
    failed = end_run(store, req, TEARDOWN)
    assert failed is not None
    assert (failed.status, failed.reason, failed.message) == ("failed", "run_failed", TEARDOWN)
