"""The DAGs run with ``dag.test()`` against the real store, the Hub and LLM emulators (on loopback)
and Airflow connections given as ``AIRFLOW_CONN_*`` variables, as a deployment would give them.

Simulated days: the emulated Hub's clock is set just after the interval a run covers, so each
daily run sees exactly what was published up to then.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dynosaur.airflow.setup import connection_env
from dynosaur.emulators.hub import HubEmulator
from dynosaur.emulators.llm import LLMEmulator
from dynosaur.pipeline import grow, request_for
from dynosaur.settings import Settings
from dynosaur.store import batches
from tests.conftest import REPO, count_rows, pointed_at

pytestmark = pytest.mark.airflow


@pytest.fixture(scope="module")
def airflow_db() -> None:
    """Airflow's metadata database (SQLite in the session's throwaway AIRFLOW_HOME), migrated."""
    airflow = Path(sys.executable).parent / "airflow"
    subprocess.run([str(airflow), "db", "migrate"], check=True, capture_output=True, timeout=300)


@pytest.fixture
def dags(airflow_db: None) -> dict[str, Any]:
    """The DAGs, parsed afresh for each test (``dag.test(run_conf=...)`` updates the DAG's own
    params in place, which would leak one test's trigger form into the next)."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert bag.import_errors == {}
    for dag in bag.dags.values():
        for task in dag.tasks:
            task.retries = 0  # dag.test() would sleep through real retry delays
    return bag.dags


@pytest.fixture
def deployment(
    store: Engine,
    settings: Settings,
    hub_emulator: HubEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[SimpleNamespace]:
    """Connections and settings of a deployment that uses the emulators, given as the
    ``AIRFLOW_CONN_*`` variables `dynosaur airflow standalone` gives; yields what tests need."""
    with LLMEmulator(invalid_share=0.2, seed=5) as llm:
        for key, value in connection_env(pointed_at(settings, hub_emulator, llm)).items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("DYNOSAUR_READER_ROLE", settings.reader_role)
        monkeypatch.setenv("DYNOSAUR_DATA_DIR", str(tmp_path / "data"))
        monkeypatch.setenv("DYNOSAUR_EXPORT_DIR", str(tmp_path / "exports"))
        monkeypatch.setenv("DYNOSAUR_LLM_BACKOFF_S", "0.01")
        monkeypatch.delenv("DYNOSAUR_DATABASE_URL", raising=False)
        yield SimpleNamespace(
            store=store, hub=hub_emulator, llm=llm, settings=settings, exports=tmp_path / "exports"
        )


def _day(value: str) -> datetime:
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def _daily_run(dag: Any, hub: HubEmulator, day: str) -> Any:
    """The scheduled run whose data interval is ``day`` (in Airflow 3 a CronDataIntervalTimetable
    run's logical date is the end of its interval)."""
    hub.now = _day(day).replace(hour=23, minute=59, second=59)
    return dag.test(logical_date=_day(day) + timedelta(days=1))


def _states(run: Any) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in run.get_task_instances()}


def _batch_datasets(engine: Engine, version: int) -> set[str]:
    with engine.connect() as conn:
        return set(
            conn.execute(
                sa.text(
                    "SELECT DISTINCT d.dataset_id FROM instance i "
                    "JOIN batch b ON b.id = i.batch_id JOIN task t ON t.id = i.task_id "
                    "JOIN dataset_config c ON c.id = t.config_id "
                    "JOIN hub_dataset d ON d.id = c.hub_dataset_id WHERE b.version = :v"
                ),
                {"v": version},
            ).scalars()
        )


def _created_on(engine: Engine, datasets: set[str]) -> set[str]:
    with engine.connect() as conn:
        return {
            str(day)
            for day in conn.execute(
                sa.text(
                    "SELECT DISTINCT (created_at AT TIME ZONE 'UTC')::date FROM hub_dataset "
                    "WHERE dataset_id = ANY(:ids)"
                ),
                {"ids": sorted(datasets)},
            ).scalars()
        }


def test_two_daily_intervals_publish_versions_1_and_2_and_a_rerun_adds_nothing(
    dags: dict[str, Any], deployment: SimpleNamespace
) -> None:
    growth, engine = dags["dynosaur_growth"], deployment.store

    first = _daily_run(growth, deployment.hub, "2024-03-02")
    assert first.state == "success", _states(first)
    second = _daily_run(growth, deployment.hub, "2024-03-03")
    assert second.state == "success", _states(second)

    with engine.connect() as conn:
        published = conn.execute(
            sa.text(
                "SELECT version, window_start, instances FROM batch_summary "
                "WHERE status = 'published' ORDER BY version"
            )
        ).all()
    assert [row.version for row in published] == [1, 2]
    assert [row.window_start.date().isoformat() for row in published] == [
        "2024-03-02",
        "2024-03-03",
    ]
    assert all(row.instances > 0 for row in published)
    # Each version brings only the datasets created in its own interval.
    assert _created_on(engine, _batch_datasets(engine, 1)) == {"2024-03-02"}
    assert _created_on(engine, _batch_datasets(engine, 2)) == {"2024-03-03"}

    before, calls_before = count_rows(engine), len(deployment.llm.request_log)
    again = _daily_run(growth, deployment.hub, "2024-03-02")
    assert again.state == "success", _states(again)
    assert _states(again)["publish"] == "skipped"  # no new version, no asset event
    assert count_rows(engine) == before
    assert len(deployment.llm.request_log) == calls_before  # nothing paid twice


def test_a_manual_run_with_explicit_ids_adds_exactly_those_datasets(
    dags: dict[str, Any], deployment: SimpleNamespace
) -> None:
    wanted = {"mathgen/arithmetic-word-problems", "lexicon-works/word-definitions"}
    deployment.hub.now = _day("2024-03-05")
    run = dags["dynosaur_growth"].test(run_conf={"dataset_ids": sorted(wanted)})
    assert run.state == "success", _states(run)
    with deployment.store.connect() as conn:
        seen = set(conn.execute(sa.text("SELECT dataset_id FROM hub_dataset")).scalars())
        version = conn.execute(
            sa.text("SELECT version FROM batch WHERE status = 'published'")
        ).scalar_one()
    assert seen == wanted
    assert _batch_datasets(deployment.store, version) == wanted


def test_a_dry_run_estimates_and_publishes_nothing(
    dags: dict[str, Any], deployment: SimpleNamespace
) -> None:
    deployment.hub.now = _day("2024-03-02")
    run = dags["dynosaur_growth"].test(
        run_conf={"window_start": "2024-03-01T00:00:00Z", "window_end": "2024-03-02T00:00:00Z",
                  "dry_run": True}
    )  # fmt: skip
    assert run.state == "success", _states(run)
    assert _states(run)["publish"] == "skipped"
    assert _states(run)["estimate"] == "success"  # the one task that sums the estimate
    assert deployment.llm.request_log == []
    note = _note(run.run_id)
    total = re.search(r"(\d+) LLM calls to send", note)
    assert note.startswith("**Dry run**") and total and int(total.group(1)) > 0, note
    with deployment.store.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM instance")).scalar_one() == 0
        assert (
            conn.execute(
                sa.text("SELECT count(*) FROM batch WHERE status = 'published'")
            ).scalar_one()
            == 0
        )


def test_the_export_dag_writes_the_published_version(
    dags: dict[str, Any], deployment: SimpleNamespace
) -> None:
    grown = _daily_run(dags["dynosaur_growth"], deployment.hub, "2024-03-01")
    assert grown.state == "success", _states(grown)
    run = dags["dynosaur_export"].test()
    assert run.state == "success", _states(run)
    folder = deployment.exports / "v1"
    jsonl = next(folder.glob("*.jsonl"))
    rows = [json.loads(line) for line in jsonl.read_text().splitlines()]
    with deployment.store.connect() as conn:
        instances = conn.execute(sa.text("SELECT count(*) FROM instance")).scalar_one()
    assert len(rows) == instances > 0
    assert set(rows[0]) == {"instruction", "input", "output", "license", "website", "taskname"}
    assert next(folder.glob("*.parquet")).stat().st_size > 0


def test_the_asset_event_names_the_version_the_consumers_export() -> None:
    from dynosaur.airflow.consumers import version_from_events

    def event(extra: dict[str, Any]) -> SimpleNamespace:
        return SimpleNamespace(extra=extra)

    events = {"dynosaur_instructions": [event({"version": 3}), event({"version": 4}), event({})]}
    assert version_from_events(events) == 4
    assert version_from_events({}) is None
    assert version_from_events(None) is None


def test_the_select_dag_stores_a_replay_set_and_exports_it(
    dags: dict[str, Any], deployment: SimpleNamespace
) -> None:
    pytest.importorskip("sentence_transformers")
    growth = dags["dynosaur_growth"]
    for day in ("2024-03-01", "2024-03-02"):
        assert _daily_run(growth, deployment.hub, day).state == "success"
    run = dags["dynosaur_select"].test(run_conf={"replay_tasks": 2})
    assert run.state == "success", _states(run)
    with deployment.store.connect() as conn:
        roles = dict(
            conn.execute(
                sa.text(
                    "SELECT m.role, count(*) FROM selection_member m "
                    "JOIN selection s ON s.id = m.selection_id "
                    "WHERE s.version = 2 GROUP BY m.role"
                )
            ).all()
        )
    assert roles["replay"] == 2 and roles["current"] > 0
    exported = list((deployment.exports / "selections").glob("*.jsonl"))
    assert len(exported) == 1 and exported[0].read_text().strip()


def test_a_day_without_new_datasets_records_an_empty_batch_and_announces_nothing(
    dags: dict[str, Any], deployment: SimpleNamespace
) -> None:
    run = _daily_run(dags["dynosaur_growth"], deployment.hub, "2024-03-10")
    assert run.state == "success", _states(run)
    assert _states(run)["publish"] == "skipped"  # no version, so no asset event for consumers
    with deployment.store.connect() as conn:
        batch = conn.execute(sa.text("SELECT status, reason, version FROM batch")).one()
    assert (batch.status, batch.reason, batch.version) == ("empty", "empty_batch", None)


def test_explicit_ids_name_the_same_run_from_the_dag_and_from_dynosaur_grow(
    dags: dict[str, Any], deployment: SimpleNamespace
) -> None:
    wanted = ["wordsmith/one-liners", "quietlab/country-facts"]
    deployment.hub.now = _day("2024-03-05")
    run = dags["dynosaur_growth"].test(run_conf={"dataset_ids": wanted})
    assert run.state == "success", _states(run)
    (published,) = batches.published_versions(deployment.store)
    assert (
        published.run_key
        == request_for(ids=wanted).run_key
        == ("ids:quietlab/country-facts,wordsmith/one-liners")
    )
    before = count_rows(deployment.store)
    # `dynosaur grow --ids` with the same ids (any order) is the same run: already finished.
    again = grow(deployment.settings, deployment.store, request_for(ids=wanted[::-1]))
    assert again["already_done"] and again["batch_id"] == published.id
    assert count_rows(deployment.store) == before


def _asset_events(run_id: str, after_id: int) -> list[Any]:
    """The asset events a growth run emitted, read back from Airflow's metadata database."""
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    with create_session() as session:
        events = session.scalars(
            sa.select(AssetEvent)
            .where(AssetEvent.id > after_id, AssetEvent.source_run_id == run_id)
            .order_by(AssetEvent.id)
        ).all()
        return [
            SimpleNamespace(task=e.source_task_id, uri=e.asset.uri, extra=dict(e.extra))
            for e in events
        ]


def _last_asset_event_id() -> int:
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    with create_session() as session:
        return session.scalar(sa.select(sa.func.max(AssetEvent.id))) or 0


def test_publish_announces_the_new_version_with_the_batch_figures(
    dags: dict[str, Any], deployment: SimpleNamespace
) -> None:
    from dynosaur.airflow.consumers import version_from_events
    from dynosaur.airflow.dags import INSTRUCTIONS

    after = _last_asset_event_id()
    run = _daily_run(dags["dynosaur_growth"], deployment.hub, "2024-03-04")
    assert run.state == "success", _states(run)
    (event,) = _asset_events(run.run_id, after)
    (batch,) = batches.published_versions(deployment.store)
    assert (event.task, event.uri) == ("publish", INSTRUCTIONS.uri)
    assert event.extra["version"] == batch.version == 1
    assert event.extra["batch_id"] == batch.id
    assert event.extra["run_key"] == request_for(day="2024-03-04").run_key
    with deployment.store.connect() as conn:
        instances = conn.execute(
            sa.text("SELECT count(*) FROM instance WHERE batch_id = :b"), {"b": batch.id}
        ).scalar_one()
    assert event.extra["instances"] == instances > 0
    for figure in ("datasets", "configs", "tasks_valid", "tasks_rejected", "llm_calls"):
        assert event.extra[figure] == batch.figures[figure], figure
    assert event.extra["cost_usd"] == pytest.approx(batch.cost_usd)
    # What the consumers read from it: the version to export or select from.
    assert version_from_events({"dynosaur_instructions": [event]}) == 1


def test_a_step_that_fails_marks_the_batch_failed_and_the_run_failed(
    dags: dict[str, Any], deployment: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.system.cluster import free_port

    growth = dags["dynosaur_growth"]
    nowhere = f"http://127.0.0.1:{free_port()}"  # the Hub cannot be reached: discover fails
    hub_conn = connection_env(
        deployment.settings.model_copy(update={"hub_endpoint": nowhere, "viewer_url": nowhere})
    )["AIRFLOW_CONN_DYNOSAUR_HUB"]
    with monkeypatch.context() as down:
        down.setenv("AIRFLOW_CONN_DYNOSAUR_HUB", hub_conn)
        down.setenv("DYNOSAUR_HUB_MAX_RETRIES", "0")
        failed = _daily_run(growth, deployment.hub, "2024-03-02")
    states = _states(failed)
    assert failed.state == "failed", states
    assert (states["start"], states["discover"]) == ("success", "failed")
    assert states["publish"] == "upstream_failed" and states["mark_failed"] == "success"
    batch = batches.find_batch(deployment.store, request_for(day="2024-03-02").run_key)
    assert batch is not None and (batch.status, batch.reason) == ("failed", "service_unavailable")
    assert "the Hub could not be reached (discovering the run)" in (batch.message or "")
    assert failed.run_id in (batch.message or "")

    # The Hub is back: running the interval again reopens the same batch and publishes it.
    again = _daily_run(growth, deployment.hub, "2024-03-02")
    assert again.state == "success", _states(again)
    (published,) = batches.published_versions(deployment.store)
    assert (published.id, published.version) == (batch.id, 1)


def test_mark_failed_runs_when_start_itself_failed(
    dags: dict[str, Any], deployment: SimpleNamespace
) -> None:
    # Half a window: the request is invalid, so start fails before opening a batch.
    run = dags["dynosaur_growth"].test(run_conf={"window_start": "2024-03-01T00:00:00Z"})
    states = _states(run)
    assert run.state == "failed", states
    assert states["start"] == "failed" and states["mark_failed"] == "success"
    assert count_rows(deployment.store, ("batch",)) == {"batch": 0}


def _note(run_id: str) -> str:
    """A run's note, read back from Airflow's metadata database."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        run = session.scalar(sa.select(DagRun).where(DagRun.run_id == run_id))
        return run.note or ""


def test_the_growth_runs_note_holds_the_batch_figures_and_the_report_path(
    dags: dict[str, Any], deployment: SimpleNamespace
) -> None:
    run = _daily_run(dags["dynosaur_growth"], deployment.hub, "2024-03-04")
    assert run.state == "success", _states(run)
    note = _note(run.run_id)
    with deployment.store.connect() as conn:
        row = conn.execute(
            sa.text(
                "SELECT s.batch_id, s.datasets, s.tasks_valid, s.instances, s.cost_usd, "
                "g.total_instances FROM batch_summary s JOIN growth g USING (version) "
                "WHERE s.version = 1"
            )
        ).one()
    assert note.startswith(f"**Version 1 published** (batch {row.batch_id}"), note
    assert f"{row.datasets} datasets" in note and f"{row.tasks_valid} valid tasks" in note
    assert f"{row.instances:,} instances" in note and f"${float(row.cost_usd):.4f}" in note
    assert f"collection now: {row.total_instances:,} instances" in note
    report = deployment.exports / "v1" / "report.html"
    assert f"`{report}`" in note

    # The export DAG writes the report the note points to.
    assert dags["dynosaur_export"].test().state == "success"
    assert f'data-figure="total_instances">{row.total_instances:,}<' in report.read_text()


class _Webhook(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A real HTTP receiver on loopback for the failure notifications."""
    _Webhook.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Webhook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", _Webhook.received
    server.shutdown()
    server.server_close()


def test_a_failed_run_logs_one_line_and_notifies_the_webhook(
    dags: dict[str, Any],
    deployment: SimpleNamespace,
    webhook: tuple[str, list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url, received = webhook
    monkeypatch.setenv(
        "AIRFLOW_CONN_DYNOSAUR_NOTIFY", json.dumps({"conn_type": "http", "host": url})
    )
    ok = _daily_run(dags["dynosaur_growth"], deployment.hub, "2024-03-10")
    assert ok.state == "success" and received == []  # only failures are notified

    with caplog.at_level("ERROR", logger="dynosaur.dag"):
        # Half a window: start fails.
        failed = dags["dynosaur_growth"].test(run_conf={"window_start": "2024-03-01T00:00:00Z"})
    assert failed.state == "failed", _states(failed)
    lines = [
        r.getMessage()
        for r in caplog.records
        if r.name == "dynosaur.dag" and r.levelname == "ERROR"
    ]
    assert lines == [f"dynosaur_growth run {failed.run_id} failed at task start: task_failure"]
    (sent,) = received
    assert sent["text"] == lines[0]
    assert (sent["dag_id"], sent["run_id"], sent["state"]) == (
        "dynosaur_growth",
        failed.run_id,
        "failed",
    )
    assert "opened no batch" in _note(failed.run_id)
