"""The offline demo: three simulated days of the growth DAG, on this machine, with nothing to pay.

What runs is the product itself, pointed at stand-ins by URL: the growth DAG (``dag.test()``, in
this process, SQLite metadata in a throwaway Airflow home), the store on the configured Postgres
(the embedded one by default) in a database of its own that is recreated each time, and the Hub and
LLM emulators on loopback serving the built-in snapshot. Each simulated day the emulated Hub's clock
moves to the end of that day, so the daily run sees exactly the datasets published by then.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from sqlalchemy.engine import Engine

from dynosaur.errors import DynosaurError
from dynosaur.pipeline import request_for
from dynosaur.settings import Settings
from dynosaur.store import batches
from dynosaur.store import status as figures
from dynosaur.store.engine import recreate_database, sqlalchemy_url
from dynosaur.store.status import BatchSummary, ReasonCount

log = logging.getLogger(__name__)

DEMO_DATABASE = "dynosaur_demo"
# The built-in snapshot publishes datasets on 2024-03-01..04; day one is the demonstrations' day.
DEMO_DAYS = ("2024-03-02", "2024-03-03", "2024-03-04")
# Share of the emulated LLM's proposals made invalid on purpose, so the filters have work to do.
DEMO_INVALID_SHARE = 0.15
DEMO_QUERIES = ("tasks_by_category.sql", "licenses_in_version.sql")


@dataclass
class DemoDay:
    """One simulated day: the DAG run's state and what it published."""

    day: str
    state: str
    seconds: float
    version: int | None = None
    figures: dict[str, Any] = field(default_factory=dict)
    failed_tasks: list[str] = field(default_factory=list)


@dataclass
class QueryResult:
    """An example query from ``sql/queries`` and its rows."""

    file: str
    question: str
    columns: list[str]
    rows: list[tuple[Any, ...]]


@dataclass
class DemoResult:
    """Everything the demo did, for the command to print."""

    database: str
    hub_url: str
    llm_url: str
    airflow_home: Path
    days: list[DemoDay]
    versions: list[BatchSummary]
    outcomes: list[ReasonCount]
    queries: list[QueryResult]
    export_files: list[str]
    seconds: float

    @property
    def ok(self) -> bool:
        return all(day.state == "success" for day in self.days)


def _query_question(text: str) -> str:
    """The query's leading comment, without its psql usage line."""
    lines = []
    for line in text.strip().splitlines():
        if not line.startswith("--"):
            break
        line = line.removeprefix("--").strip()
        if not line.startswith("psql:"):
            lines.append(line)
    return " ".join(lines)


def _plain(value: Any) -> Any:
    """Decimals from SQL sums as ints (when whole) or floats, for display."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _queries(engine: Engine, version: int) -> list[QueryResult]:
    from dynosaur.store.migrations import sql_dir

    results = []
    for name in DEMO_QUERIES:
        text = (sql_dir() / "queries" / name).read_text(encoding="utf-8")
        answer = figures.run_query(engine, text, {"version": version})
        results.append(
            QueryResult(
                file=f"sql/queries/{name}",
                question=_query_question(text),
                columns=answer.columns,
                rows=[tuple(_plain(v) for v in row) for row in answer.rows],
            )
        )
    return results


def run_demo(
    settings: Settings,
    *,
    days: tuple[str, ...] = DEMO_DAYS,
    database: str = DEMO_DATABASE,
    on_day: Callable[[DemoDay], None] | None = None,
    on_step: Callable[[str], None] | None = None,
) -> DemoResult:
    """Run the growth DAG for ``days`` against the emulators and a fresh demo database.

    Changes this process's environment (Airflow's configuration and connections): run it in a
    process of its own, before anything imports Airflow.
    """
    from dynosaur.airflow import setup
    from dynosaur.emulators.hub import HubEmulator
    from dynosaur.emulators.llm import LLMEmulator
    from dynosaur.store import open_store

    say = on_step or (lambda _message: None)
    if "airflow" in sys.modules:
        raise DynosaurError("the demo must run before Airflow is imported in this process")
    started = time.monotonic()
    say("recreating the demo database")
    demo_url = recreate_database(settings, database)
    folder = settings.data_dir / "demo"
    shutil.rmtree(folder, ignore_errors=True)
    home, exports = folder / "airflow", folder / "exports"
    first_day = datetime.fromisoformat(days[0]).replace(tzinfo=UTC)
    with (
        HubEmulator(now=first_day) as hub,
        LLMEmulator(invalid_share=DEMO_INVALID_SHARE, seed=7) as llm,
    ):
        demo = settings.model_copy(
            update={
                "database_url": demo_url,
                "hub_endpoint": hub.url,
                "viewer_url": hub.url,
                "hub_token": None,
                "llm_base_url": llm.base_url,
                "llm_api_key": SecretStr("sk-offline-demo"),
                "export_dir": exports,
            }
        )
        engine = open_store(demo)
        hub_url, llm_url = hub.url, llm.base_url
        env = {
            **setup.airflow_env(home, quiet=True),
            **setup.connection_env(demo),
            "DYNOSAUR_EXPORT_DIR": str(exports),
            "DYNOSAUR_DATA_DIR": str(settings.data_dir),
        }
        os.environ.update(env)
        say("migrating Airflow's metadata database (SQLite)")
        setup.prepare_home(home, env)
        say("parsing the DAGs")
        from airflow.dag_processing.dagbag import DagBag

        bag = DagBag(dag_folder=str(setup.dags_folder()))
        if bag.import_errors:
            raise DynosaurError(f"the DAG files do not import: {bag.import_errors}")
        for dag in bag.dags.values():
            for task in dag.tasks:
                task.retries = 0  # dag.test() would sleep through real retry delays
        growth = bag.dags["dynosaur_growth"]
        results = []
        for day in days:
            start = datetime.fromisoformat(day).replace(tzinfo=UTC)
            hub.now = start + timedelta(days=1) - timedelta(seconds=1)
            say(f"growth DAG for {day}")
            t0 = time.monotonic()
            # A daily run's logical date is the end of its data interval.
            run = growth.test(logical_date=start + timedelta(days=1))
            result = DemoDay(day=day, state=str(run.state), seconds=time.monotonic() - t0)
            result.failed_tasks = sorted(
                ti.task_id for ti in run.get_task_instances() if ti.state == "failed"
            )
            batch = batches.find_batch(engine, request_for(day=start).run_key)
            if batch is not None:
                result.version, result.figures = batch.version, dict(batch.figures)
            results.append(result)
            if on_day:
                on_day(result)
            if result.state != "success":
                break
        export_files: list[str] = []
        if results and all(r.state == "success" for r in results):
            say("export DAG for the latest version")
            exported = bag.dags["dynosaur_export"].test()
            if str(exported.state) == "success":
                export_files = sorted(str(p) for p in exports.rglob("*") if p.is_file())
        versions = figures.batch_summaries(engine, published_only=True)
        outcomes = figures.outcomes_by_reason(engine)
        latest = batches.latest_version(engine)
        queries = _queries(engine, latest) if latest else []
    engine.dispose()
    return DemoResult(
        database=sqlalchemy_url(demo_url).render_as_string(hide_password=True),
        hub_url=hub_url,
        llm_url=llm_url,
        airflow_home=home,
        days=results,
        versions=versions,
        outcomes=outcomes,
        queries=queries,
        export_files=export_files,
        seconds=time.monotonic() - started,
    )
