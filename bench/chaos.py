"""Chaos bench (issue 12): does an ordinary failure ever lose a day?

Against the Hub and LLM emulators and a real Postgres server, every scenario runs
``dynosaur grow --day 2024-03-01`` as an operator would (a separate process), breaks it, runs it
again, and compares what was published with a crash-free reference run:

- SIGKILL of the process at N random moments across all its steps, then a re-run;
- an LLM outage for a whole run (closed port), then a re-run with the LLM back;
- the database unreachable for 10 s (new connections refused, open ones terminated with
  pg_terminate_backend) when each of collect, generate, curate and publish starts, then a re-run
  if the run failed;
- 20% malformed or truncated answers (emulator knobs): every config ends with tasks or a
  capped failure;
- requests the LLM emulator answered twice (only requests in flight at a kill may be).

Each scenario works in its own database cloned from a migrated template. Prints one table.

Example: DYNOSAUR_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
    python bench/chaos.py --kills 20
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dynosaur.emulators.hub import HubEmulator  # noqa: E402
from dynosaur.emulators.llm import LLMEmulator  # noqa: E402
from dynosaur.settings import Settings  # noqa: E402
from dynosaur.store import open_store  # noqa: E402
from dynosaur.store.engine import dispose_engines, sqlalchemy_url  # noqa: E402

DAY = "2024-03-01"
STEPS = ("collect", "generate", "curate", "publish")
CONTENT = (
    "SELECT dataset_id, config_name, instruction, input, output FROM collection "
    "ORDER BY 1, 2, 3, 4, 5"
)


class Rows(list[tuple[str, str, str]]):
    """The table's rows, each also printed as soon as it is measured."""

    def append(self, row: tuple[str, str, str]) -> None:
        print("  measured:", " | ".join(row), flush=True)
        super().append(row)


class Bench:
    """Databases on one server, the emulators, and ``dynosaur grow`` as a child process."""

    def __init__(self, server_url: str, hub: HubEmulator, llm: LLMEmulator) -> None:
        self.server = sqlalchemy_url(server_url)
        self.admin = sa.create_engine(self.server, isolation_level="AUTOCOMMIT")
        self.hub, self.llm = hub, llm
        self.tag = uuid.uuid4().hex[:8]
        self.role = f"dynosaur_reader_chaos_{self.tag}"
        self.created: list[str] = []
        self.template = self._new("template")
        open_store(self._settings(self.template))  # migrated once, cloned per scenario
        dispose_engines()

    def _url(self, name: str) -> str:
        return self.server.set(database=name).render_as_string(hide_password=False)

    def _settings(self, name: str) -> Settings:
        return Settings(database_url=self._url(name), reader_role=self.role)

    def _new(self, label: str, template: str | None = None) -> str:
        name = f"dynosaur_chaos_{self.tag}_{label}_{len(self.created)}"
        with self.admin.connect() as conn:
            extra = f' TEMPLATE "{template}"' if template else ""
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"{extra}')
        self.created.append(name)
        return name

    def database(self, label: str) -> str:
        return self._new(label, self.template)

    def env(self, db: str, **extra: str) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("DYNOSAUR_", "AIRFLOW"))}
        return {
            **keep,
            "PYTHONPATH": str(REPO),
            "DYNOSAUR_DATABASE_URL": self._url(db),
            "DYNOSAUR_READER_ROLE": self.role,
            "DYNOSAUR_HUB_ENDPOINT": self.hub.url,
            "DYNOSAUR_VIEWER_URL": self.hub.url,
            "DYNOSAUR_LLM_BASE_URL": self.llm.base_url,
            "DYNOSAUR_LLM_API_KEY": "sk-chaos",
            "DYNOSAUR_LLM_BACKOFF_S": "0.05",
            "DYNOSAUR_LLM_BACKOFF_MAX_S": "0.5",
            "DYNOSAUR_LLM_MAX_RETRIES": "2",
            "DYNOSAUR_HUB_BACKOFF_S": "0.05",
            "DYNOSAUR_HUB_BACKOFF_MAX_S": "0.5",
            "DYNOSAUR_BUDGET_USD": "",
            "DYNOSAUR_LOCK_TIMEOUT_S": "20",
            **extra,
        }

    def grow(self, db: str, **extra: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "dynosaur.cli.main", "-v", "grow", "--day", DAY],
            env=self.env(db, **extra),
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def finish(self, db: str, **extra: str) -> tuple[int, str]:
        child = self.grow(db, **extra)
        out, _ = child.communicate(timeout=600)
        return child.returncode, out

    def query(self, db: str, sql: str) -> list[tuple[Any, ...]]:
        engine = sa.create_engine(sqlalchemy_url(self._url(db)), poolclass=sa.NullPool)
        try:
            with engine.connect() as conn:
                return [tuple(r) for r in conn.execute(sa.text(sql)).all()]
        finally:
            engine.dispose()

    def content(self, db: str) -> list[tuple[Any, ...]]:
        return self.query(db, CONTENT)

    @contextmanager
    def database_down(self, db: str, seconds: float) -> Iterator[int]:
        """The database refuses new connections and loses its open ones for ``seconds``."""
        killed = 0
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'ALTER DATABASE "{db}" ALLOW_CONNECTIONS false')
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                killed += len(
                    conn.execute(
                        sa.text(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = :d AND pid <> pg_backend_pid()"
                        ),
                        {"d": db},
                    ).all()
                )
                time.sleep(0.2)
            conn.exec_driver_sql(f'ALTER DATABASE "{db}" ALLOW_CONNECTIONS true')
        yield killed

    def drop_all(self) -> None:
        dispose_engines()
        with self.admin.connect() as conn:
            for name in self.created:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{self.role}"')
        self.admin.dispose()


def answered_twice(entries: list[dict[str, Any]]) -> int:
    """Requests (by messages hash) the emulator answered with a usable 200 more than once."""
    counts = Counter(
        e["messages_sha256"]
        for e in entries
        if e.get("status") == 200 and not (e.get("outcome") or {}).get("fault")
    )
    return sum(n - 1 for n in counts.values() if n > 1)


def kills(bench: Bench, reference: list[tuple[Any, ...]], runtime: float, n: int, seed: int):
    rng = random.Random(seed)
    equal, twice, points = 0, 0, []
    for i in range(n):
        db = bench.database(f"kill{i}")
        start = len(bench.llm.request_log)
        moment = rng.uniform(0.0, runtime)
        child = bench.grow(db)
        time.sleep(moment)  # the bench's own random kill point, not a test's timing
        child.send_signal(signal.SIGKILL)
        child.communicate()
        code, out = bench.finish(db)
        same = code == 0 and bench.content(db) == reference
        equal += same
        twice += answered_twice(bench.llm.request_log[start:])
        points.append(f"{moment:.1f}s{'' if same else '!'}")
        if not same:
            print(f"  kill at {moment:.1f}s: re-run exit {code}\n{out[-2000:]}", flush=True)
    return equal, twice, points


def step_outage(bench: Bench, reference: list[tuple[Any, ...]], step: str) -> tuple[bool, str]:
    """The database goes away for 10 s when ``step`` starts; then a re-run if the run failed."""
    db = bench.database(f"down_{step}")
    child = bench.grow(db)
    assert child.stdout is not None
    marker = f"step {step} starts"
    seen = False
    lines: list[str] = []

    def read() -> None:
        assert child.stdout is not None
        for line in child.stdout:
            lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    while child.poll() is None and not seen:
        seen = any(marker in line for line in list(lines))
        time.sleep(0.05)
    killed = 0
    if seen:
        with bench.database_down(db, 10.0) as n:
            killed = n
    child.wait(timeout=600)
    reader.join(timeout=10)
    first = child.returncode
    code = first
    if first != 0:
        code, _ = bench.finish(db)
    same = code == 0 and bench.content(db) == reference
    note = f"hit={seen}, killed {killed} conn, first exit {first}, re-run exit {code}"
    return same, note


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "DYNOSAUR_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    args = parser.parse_args()
    began = time.monotonic()
    rows = Rows()
    now = datetime(2024, 3, 1, 23, 59, 59, tzinfo=UTC)
    with HubEmulator(now=now) as hub, LLMEmulator(seed=3) as llm:
        bench = Bench(args.database_url, hub, llm)
        try:
            db = bench.database("reference")
            t0 = time.monotonic()
            code, out = bench.finish(db)
            runtime = time.monotonic() - t0
            reference = bench.content(db)
            assert code == 0 and reference, out[-3000:]
            rows.append(
                ("reference run", f"{len(reference)} instances", f"{runtime:.1f} s, exit {code}")
            )
            ref_twice = answered_twice(llm.request_log)

            equal, twice, points = kills(bench, reference, runtime, args.kills, args.seed)
            rows.append(
                (
                    f"SIGKILL at {args.kills} random points + re-run",
                    f"{equal}/{args.kills} equal to reference",
                    "kill points " + " ".join(points),
                )
            )

            db = bench.database("llm_outage")
            code, out = bench.finish(db, DYNOSAUR_LLM_BASE_URL="http://127.0.0.1:9/v1")
            status = bench.query(db, "SELECT status, coalesce(reason, '') FROM batch")
            lost = bench.query(db, "SELECT count(*) FROM dataset_config WHERE status = 'failed'")[
                0
            ][0]
            line = [x for x in out.splitlines() if x.startswith("error:")]
            code2, _ = bench.finish(db)
            same = code2 == 0 and bench.content(db) == reference
            rows.append(
                (
                    "LLM outage for a whole run, then recovery",
                    f"configs lost: {lost}; re-run equal: {same}",
                    f"outage exit {code}, batch {status}, {line[-1][:90] if line else '-'}",
                )
            )

            recovered, notes = 0, []
            for step in STEPS:
                same, note = step_outage(bench, reference, step)
                recovered += same
                notes.append(f"{step}: {'ok' if same else 'DIFFERENT'} ({note})")
            rows.append(
                (
                    "database down 10 s at each step, re-run",
                    f"{recovered}/{len(STEPS)} equal to reference",
                    "; ".join(notes),
                )
            )
        finally:
            bench.drop_all()

    with (
        LLMEmulator(seed=5, rate_malformed=0.1, rate_truncated=0.1) as bad,
        HubEmulator(now=now) as hub,
    ):
        bench = Bench(args.database_url, hub, bad)
        try:
            db = bench.database("malformed")
            code, out = bench.finish(db)
            ends = bench.query(
                db,
                "SELECT c.status, coalesce(c.reason, ''), count(*) FROM dataset_config c "
                "GROUP BY 1, 2 ORDER BY 1, 2",
            )
            waiting = sum(n for s, _, n in ends if s in ("collected", "deferred"))
            faults = Counter((e.get("outcome") or {}).get("fault") for e in bad.request_log)
            unusable = bench.query(
                db,
                "SELECT count(*) FROM llm_call WHERE status = 'succeeded' AND "
                "(finish_reason = 'length' OR 'response_truncated' = ANY(notes))",
            )[0][0]
            figures = bench.query(db, "SELECT figures FROM batch")
            rows.append(
                (
                    "20% malformed or truncated answers",
                    f"configs still waiting: {waiting}; exit {code}",
                    f"config ends {ends}; injected {dict(faults)}; truncated answers "
                    f"stored as succeeded: {unusable}; batch figures keys "
                    f"{sorted(figures[0][0]) if figures else '-'}",
                )
            )
        finally:
            bench.drop_all()

    rows.append(
        (
            "requests answered twice",
            f"{twice} in the kill runs, {ref_twice} in the reference",
            "by messages_sha256 over usable 200 answers",
        )
    )
    width = max(len(r[0]) for r in rows)
    print(f"\nchaos bench, dynosaur grow --day {DAY} ({time.monotonic() - began:.0f} s)\n")
    print(f"| {'scenario':<{width}} | result | details |")
    print(f"|{'-' * (width + 2)}|---|---|")
    for scenario, result, details in rows:
        print(f"| {scenario:<{width}} | {result} | {details} |")


if __name__ == "__main__":
    main()
