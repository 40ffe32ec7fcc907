"""Chaos bench (issue 12): does an ordinary failure ever lose a day?

Against the Hub and LLM emulators and a real Postgres server, every scenario runs
``dynosaur grow --day 2024-03-01`` as an operator would (a separate process), breaks it, runs it
again, and compares what was published with a crash-free reference run:

- SIGKILL of the process at N random moments spread over all its phases (start-up, discover,
  collect, generate, curate, publish: the kills go round the phases in a random order, each at a
  random offset into its phase as long as the phase took in a second, warm reference run,
  counted from the live run's own ``step X starts`` line), then a re-run; the phase each kill
  hit is read from the killed run's log (a run that ended before its kill point is run again in
  a fresh database, killed at half the offset);
- an LLM outage for a whole run (closed port), then a re-run with the LLM back;
- the database unreachable for 10 s (new connections refused, open ones terminated with
  pg_terminate_backend) when each of collect, generate, curate and publish starts, then a re-run
  if the run failed;
- 20% malformed or truncated answers (emulator knobs rate_malformed=0.1, rate_truncated=0.1)
  in three runs (separate databases, one emulator: each run draws its own faults) over the
  emulated Hub's whole snapshot window (2024-03-01 to 2024-03-05: one day holds only 4 configs,
  too few calls for 20% to draw faults reliably): every config ends with tasks or a capped
  failure, the faults injected and the unusable answers stored are counted; one more run with
  ``DYNOSAUR_LLM_MAX_UNUSABLE=1`` makes prompts reach the cap;
- requests the LLM emulator answered twice: a duplicate is allowed only for a request in flight
  at a kill (its answer was not in the ledger when the process died).

Each scenario works in its own database cloned from a migrated template; ``--workers`` scenarios
run at once (each with its own LLM emulator, so duplicates are counted per scenario). Prints one
table, the wall time and the load average.

Example: DYNOSAUR_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
    python bench/chaos.py --kills 20
"""

from __future__ import annotations

import argparse
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dynosaur.emulators.hub import HubEmulator  # noqa: E402
from dynosaur.emulators.llm import LLMEmulator, messages_sha256  # noqa: E402
from dynosaur.settings import Settings  # noqa: E402
from dynosaur.store import open_store  # noqa: E402
from dynosaur.store.engine import dispose_engines, sqlalchemy_url  # noqa: E402

DAY = ["--day", "2024-03-01"]
WIDE = ["--since", "2024-03-01", "--until", "2024-03-05"]  # the snapshot's every dataset
STEPS = ("collect", "generate", "curate", "publish")
PHASES = ("start-up", "discover", *STEPS)  # start-up: process start to `step discover starts`
CONTENT = (
    "SELECT dataset_id, config_name, instruction, input, output FROM collection "
    "ORDER BY 1, 2, 3, 4, 5"
)
Content = list[tuple[Any, ...]]
DAY_NOW = datetime(2024, 3, 1, 23, 59, 59, tzinfo=UTC)  # the emulated Hub's clock: day's end
UNUSABLE = "llm_unusable_answer"
# The Hub emulator of the scenario running in this thread (each scenario gets a fresh one: a
# shared one was seen to stall every run for minutes after many clients were killed mid-request).
_scenario = threading.local()


class Rows(list[tuple[str, str, str]]):
    """The table's rows, each also printed as soon as it is measured."""

    def append(self, row: tuple[str, str, str]) -> None:
        print("  measured:", " | ".join(row), flush=True)
        super().append(row)


class Child:
    """``dynosaur -v grow ...`` as a child process; its output lines are read as they come, with
    the moment (since the start) each phase's ``step X starts`` line arrived."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.began = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dynosaur.cli.main", "-v", "grow", *args],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self.marks: dict[str, float] = {"start-up": 0.0}
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._changed:
                self.lines.append(line)
                for phase in PHASES[1:]:
                    if f": step {phase} starts" in line:
                        self.marks.setdefault(phase, time.monotonic() - self.began)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, phase: str) -> bool:
        """Block until ``phase`` started (True) or the process ended without it (False)."""
        with self._changed:
            while phase not in self.marks:
                if not self._reader.is_alive():
                    return False
                self._changed.wait(0.5)
            return True

    def phase_now(self) -> str:
        with self._changed:
            return max(self.marks, key=lambda p: self.marks[p])

    def kill(self) -> bool:
        """SIGKILL; False when the process had already ended."""
        if self.proc.poll() is not None:
            return False
        self.proc.send_signal(signal.SIGKILL)
        return True

    def finish(self) -> tuple[int, str]:
        code = self.proc.wait(timeout=600)
        self._reader.join(timeout=30)
        return code, "".join(self.lines)

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.began


class Bench:
    """Databases on one server, the emulators, and ``dynosaur grow`` as a child process."""

    def __init__(self, server_url: str, hub: HubEmulator) -> None:
        self.server = sqlalchemy_url(server_url)
        self.admin = sa.create_engine(self.server, isolation_level="AUTOCOMMIT")
        self.hub = hub
        self.tag = uuid.uuid4().hex[:8]
        self.role = f"dynosaur_reader_chaos_{self.tag}"
        self.created: list[str] = []
        self._names = threading.Lock()
        self.template = self._new("template")
        open_store(self._settings(self.template))  # migrated once, cloned per scenario
        dispose_engines()

    def _url(self, name: str) -> str:
        return self.server.set(database=name).render_as_string(hide_password=False)

    def _settings(self, name: str) -> Settings:
        return Settings(database_url=self._url(name), reader_role=self.role)

    def _new(self, label: str, template: str | None = None) -> str:
        with self._names:
            name = f"dynosaur_chaos_{self.tag}_{label}_{len(self.created)}"
            self.created.append(name)
            extra = f' TEMPLATE "{template}"' if template else ""
            with self.admin.connect() as conn:  # one clone at a time: the template is shared
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"{extra}')
        return name

    def database(self, label: str) -> str:
        return self._new(label, self.template)

    def env(self, db: str, llm: LLMEmulator, **extra: str) -> dict[str, str]:
        hub = getattr(_scenario, "hub", None) or self.hub
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("DYNOSAUR_", "AIRFLOW"))}
        return {
            **keep,
            "PYTHONPATH": str(REPO),
            "DYNOSAUR_DATABASE_URL": self._url(db),
            "DYNOSAUR_READER_ROLE": self.role,
            "DYNOSAUR_HUB_ENDPOINT": hub.url,
            "DYNOSAUR_VIEWER_URL": hub.url,
            "DYNOSAUR_LLM_BASE_URL": llm.base_url,
            "DYNOSAUR_LLM_API_KEY": "sk-chaos",
            "DYNOSAUR_LLM_BACKOFF_S": "0.05",
            "DYNOSAUR_LLM_BACKOFF_MAX_S": "0.5",
            "DYNOSAUR_LLM_MAX_RETRIES": "2",
            "DYNOSAUR_HUB_BACKOFF_S": "0.05",
            "DYNOSAUR_HUB_BACKOFF_MAX_S": "0.5",
            "DYNOSAUR_BUDGET_USD": "",
            "DYNOSAUR_LOCK_TIMEOUT_S": "20",
            "COLUMNS": "200",
            **extra,
        }

    def grow(self, db: str, llm: LLMEmulator, args: list[str] = DAY, **extra: str) -> Child:
        return Child(args, self.env(db, llm, **extra))

    def finish(
        self, db: str, llm: LLMEmulator, args: list[str] = DAY, **extra: str
    ) -> tuple[int, str]:
        return self.grow(db, llm, args, **extra).finish()

    def query(self, db: str, sql: str) -> list[tuple[Any, ...]]:
        engine = sa.create_engine(sqlalchemy_url(self._url(db)), poolclass=sa.NullPool)
        try:
            with engine.connect() as conn:
                return [tuple(r) for r in conn.execute(sa.text(sql)).all()]
        finally:
            engine.dispose()

    def content(self, db: str) -> Content:
        return self.query(db, CONTENT)

    def recorded(self, db: str) -> set[str]:
        """The messages hashes of the ledger's succeeded calls (answers the store kept)."""
        rows = self.query(db, "SELECT messages FROM llm_call WHERE status = 'succeeded'")
        return {messages_sha256(messages) for (messages,) in rows}

    @contextmanager
    def database_down(self, db: str, seconds: float) -> Iterator[list[int]]:
        """The database refuses new connections and loses its open ones for ``seconds``; yields
        a list that holds the number of connections terminated once the time is up."""
        killed = [0]
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'ALTER DATABASE "{db}" ALLOW_CONNECTIONS false')
            try:
                end = time.monotonic() + seconds
                while time.monotonic() < end:
                    killed[0] += len(
                        conn.execute(
                            sa.text(
                                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE datname = :d AND pid <> pg_backend_pid()"
                            ),
                            {"d": db},
                        ).all()
                    )
                    time.sleep(0.2)  # the outage's own length, not a test's timing
            finally:
                conn.exec_driver_sql(f'ALTER DATABASE "{db}" ALLOW_CONNECTIONS true')
        yield killed

    def drop_all(self) -> None:
        dispose_engines()
        with self.admin.connect() as conn:
            for name in self.created:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{self.role}"')
        self.admin.dispose()


def usable(entries: list[dict[str, Any]]) -> list[str]:
    """Messages hashes of the usable 200 answers among emulator log entries, in order."""
    return [
        e["messages_sha256"]
        for e in entries
        if e.get("status") == 200 and not (e.get("outcome") or {}).get("fault")
    ]


def answered_twice(hashes: list[str]) -> int:
    """Requests (by messages hash) answered with a usable 200 more than once."""
    return sum(n - 1 for n in Counter(hashes).values() if n > 1)


@dataclass
class Lane:
    """One LLM emulator, used by one scenario at a time (its log slice is that scenario's)."""

    llm: LLMEmulator

    def mark(self) -> int:
        return len(self.llm.request_log)

    def since(self, mark: int) -> list[dict[str, Any]]:
        return self.llm.request_log[mark:]


@dataclass
class KillResult:
    planned: str
    hit: str
    seconds: float
    equal: bool
    twice: int = 0
    in_flight_twice: int = 0
    note: str = ""


@dataclass
class Reference:
    content: Content
    seconds: float
    phases: dict[str, float] = field(default_factory=dict)  # phase -> seconds it lasted
    twice: int = 0


def reference_run(bench: Bench, lane: Lane) -> Reference:
    db = bench.database("reference")
    mark = lane.mark()
    child = bench.grow(db, lane.llm)
    code, out = child.finish()
    seconds = child.seconds
    content = bench.content(db)
    assert code == 0 and content, out[-3000:]
    starts = sorted(child.marks.items(), key=lambda kv: kv[1])
    ends = [t for _, t in starts[1:]] + [seconds]
    phases = {p: max(end - t, 0.05) for (p, t), end in zip(starts, ends, strict=True)}
    return Reference(content, seconds, phases, answered_twice(usable(lane.since(mark))))


def kill_once(bench: Bench, lane: Lane, ref: Reference, i: int, phase: str, frac: float):
    offset = frac * ref.phases.get(phase, 0.1)
    for _ in range(3):  # a run that ended before its kill point: again, in a fresh database,
        db = bench.database(f"kill{i}")  # at half the offset
        mark = lane.mark()
        child = bench.grow(db, lane.llm)
        reached = child.wait_for(phase)
        if reached:
            time.sleep(offset)  # the bench's own random kill point, not a test's timing
        hit = child.phase_now()
        killed = child.kill()
        child.finish()
        at = child.seconds
        if killed:
            break
        print(f"  kill {i}: the run ended before {phase}+{offset:.2f}s; again", flush=True)
        offset /= 2
    recorded = bench.recorded(db)  # answers the store kept before it died
    killed_run = usable(lane.since(mark))
    in_flight = set(killed_run) - recorded
    rerun_mark = lane.mark()
    rerun = bench.grow(db, lane.llm)
    code, out = rerun.finish()
    took = f"hit {hit} at {at:.1f} s; re-run {rerun.seconds:.1f} s"
    print(f"  kill {i}: {phase}+{offset:.2f}s, {took}", flush=True)
    again = usable(lane.since(rerun_mark))
    twice = answered_twice(killed_run + again)
    allowed = sum(1 for h in set(again) if h in in_flight)
    same = code == 0 and bench.content(db) == ref.content
    note = "" if same else f"re-run exit {code}: {out[-1500:]}"
    if not killed:
        hit = "after exit"
    result = KillResult(f"{phase}+{offset:.2f}s", hit, at, same, twice, min(allowed, twice), note)
    if not same:
        print(f"  kill {i} ({result.planned}, hit {hit}) DIFFERENT\n{note}", flush=True)
    return result


def llm_outage(bench: Bench, lane: Lane, ref: Reference) -> tuple[str, str]:
    db = bench.database("llm_outage")
    code, out = bench.finish(db, lane.llm, DYNOSAUR_LLM_BASE_URL="http://127.0.0.1:9/v1")
    status = bench.query(db, "SELECT status, coalesce(reason, '') FROM batch")
    waiting = bench.query(
        db,
        "SELECT status, coalesce(reason, ''), count(*) FROM dataset_config GROUP BY 1, 2 "
        "ORDER BY 1, 2",
    )
    lost = sum(n for s, _, n in waiting if s == "failed")
    line = [x for x in out.splitlines() if x.startswith("error:")]
    code2, _ = bench.finish(db, lane.llm)
    same = code2 == 0 and bench.content(db) == ref.content
    return (
        f"configs lost: {lost}; re-run exit {code2}, equal: {same}",
        f"outage run: exit {code}, batch {status}, configs {waiting}, "
        f"{len(line)} error line: {line[-1][:110] if line else '-'}",
    )


def step_outage(bench: Bench, lane: Lane, ref: Reference, step: str) -> tuple[bool, str]:
    """The database goes away for 10 s when ``step`` starts; then a re-run if the run failed."""
    db = bench.database(f"down_{step}")
    child = bench.grow(db, lane.llm)
    seen = child.wait_for(step)
    print(f"  database down at {step}: step seen {seen} after {child.seconds:.1f} s", flush=True)
    killed = 0
    if seen:
        with bench.database_down(db, 10.0) as n:
            pass
        killed = n[0]
    first, _ = child.finish()
    print(f"  database down at {step}: first run ended after {child.seconds:.1f} s", flush=True)
    code = first
    if first != 0:
        code, _ = bench.finish(db, lane.llm)
        print(f"  database down at {step}: re-run ended", flush=True)
    same = code == 0 and bench.content(db) == ref.content
    return same, f"hit={seen}, {killed} conn killed, exit {first}, re-run exit {code}"


def config_ends(bench: Bench, db: str) -> tuple[Counter[tuple[str, str]], int, int, int]:
    """A run's configs by (status, reason), configs with valid tasks, unusable answers counted
    on generations and ledger rows noted unusable."""
    ends: Counter[tuple[str, str]] = Counter()
    for status, reason, n in bench.query(
        db, "SELECT status, coalesce(reason, ''), count(*) FROM dataset_config GROUP BY 1, 2"
    ):
        ends[(status, reason)] += n
    (with_tasks,) = bench.query(
        db, "SELECT count(DISTINCT config_id) FROM task WHERE status = 'valid'"
    )[0]
    (stored,) = bench.query(db, "SELECT coalesce(sum(unusable_answers), 0) FROM generation")[0]
    (noted,) = bench.query(db, f"SELECT count(*) FROM llm_call WHERE '{UNUSABLE}' = ANY(notes)")[0]
    return ends, int(with_tasks), int(stored), int(noted)


def malformed(server_url: str, now: datetime, runs: int, workers: int) -> tuple[str, str]:
    """``runs`` runs of the whole snapshot window, each in its own database, against one LLM
    emulator with 10% malformed and 10% truncated answers (the n-th arrival of the same request
    gets the n-th draw, so each run draws its own faults); one more run allows a single unusable
    answer per prompt (``DYNOSAUR_LLM_MAX_UNUSABLE=1``), so that the cap is reached."""
    with (
        LLMEmulator(seed=5, rate_malformed=0.1, rate_truncated=0.1) as bad,
        HubEmulator(now=now) as hub,
    ):
        bench = Bench(server_url, hub)
        try:
            jobs = [(bench.database(f"malformed{i}"), "3") for i in range(runs)]
            jobs.append((bench.database("malformed_cap1"), "1"))
            with ThreadPoolExecutor(max_workers=workers) as pool:
                codes = list(
                    pool.map(
                        lambda job: bench.finish(
                            job[0], bad, WIDE, DYNOSAUR_LLM_MAX_UNUSABLE=job[1]
                        )[0],
                        jobs,
                    )
                )
            ends: Counter[tuple[str, str]] = Counter()
            with_tasks = stored = noted = 0
            capped_cap1 = 0
            for db, cap in jobs:
                e, w, st, no = config_ends(bench, db)
                ends += e
                with_tasks, stored, noted = with_tasks + w, stored + st, noted + no
                if cap == "1":
                    capped_cap1 = e[("failed", UNUSABLE)]
            capped = sum(n for (s, r), n in ends.items() if s == "failed" and r == UNUSABLE)
            other_failed = sum(n for (s, r), n in ends.items() if s == "failed" and r != UNUSABLE)
            skipped = sum(n for (s, _), n in ends.items() if s == "skipped")
            waiting = sum(
                n for (s, _), n in ends.items() if s in ("collected", "deferred", "generated")
            )
            answered = [e for e in bad.request_log if e.get("status") == 200]
            faults = Counter((e.get("outcome") or {}).get("fault") or "none" for e in answered)
            injected = faults["malformed"] + faults["truncated"]
            return (
                f"{sum(ends.values())} configs in {len(jobs)} runs: {with_tasks} with tasks, "
                f"{capped} capped failures ({capped_cap1} in the run with cap 1), {skipped} "
                f"skipped at collect (never asked), {other_failed} other failures, {waiting} "
                f"still waiting; {injected} unusable answers injected, {noted} counted; "
                f"exits {codes}",
                f"{len(answered)} answers: {dict(faults)}; ledger rows noted {UNUSABLE} "
                f"{noted}, generations' unusable_answers {stored}; cap "
                f"DYNOSAUR_LLM_MAX_UNUSABLE 3 (default) in {runs} runs, 1 in the last; "
                f"config ends {sorted(ends.items())}",
            )
        finally:
            bench.drop_all()


def in_lanes(lanes: queue.Queue[Lane], job: Callable[[Lane], Any]) -> Any:
    """Run a scenario with a lane (its LLM emulator) and a fresh Hub emulator of its own."""
    lane = lanes.get()
    try:
        with HubEmulator(now=DAY_NOW) as hub:
            _scenario.hub = hub
            try:
                return job(lane)
            finally:
                _scenario.hub = None
    finally:
        lanes.put(lane)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--workers", type=int, default=2, help="scenarios run at once")
    parser.add_argument(
        "--malformed-runs", type=int, default=3, help="runs of the snapshot window with faults"
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "DYNOSAUR_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    args = parser.parse_args()
    began = time.monotonic()
    rows = Rows()
    rng = random.Random(args.seed)
    now = DAY_NOW
    emulators = [LLMEmulator(seed=3) for _ in range(args.workers)]
    with HubEmulator(now=now) as hub:
        for llm in emulators:
            llm.__enter__()
        lanes: queue.Queue[Lane] = queue.Queue()
        for llm in emulators:
            lanes.put(Lane(llm))
        bench = Bench(args.database_url, hub)
        try:
            first = in_lanes(lanes, lambda lane: reference_run(bench, lane))
            # A second crash-free run, with the emulators warm as in the scenarios: its content
            # must equal the first's, and its phases' lengths place the kills.
            ref = in_lanes(lanes, lambda lane: reference_run(bench, lane))
            rows.append(
                (
                    "reference run (twice, crash-free)",
                    f"{len(first.content)} instances; second run equal: "
                    f"{ref.content == first.content}",
                    f"{first.seconds:.1f} s and {ref.seconds:.1f} s, exit 0; phases of the "
                    "second (where kills are placed) "
                    + ", ".join(f"{p} {s:.1f} s" for p, s in ref.phases.items()),
                )
            )
            ref.twice += first.twice
            order: list[str] = []
            while len(order) < args.kills:
                order += rng.sample(PHASES, len(PHASES))
            plan = [(i, order[i], rng.random()) for i in range(args.kills)]
            with ThreadPoolExecutor(max_workers=args.workers) as pool:
                kills = list(
                    pool.map(
                        lambda p: in_lanes(lanes, lambda lane: kill_once(bench, lane, ref, *p)),
                        plan,
                    )
                )
                outage = pool.submit(in_lanes, lanes, lambda lane: llm_outage(bench, lane, ref))
                downs = [
                    pool.submit(in_lanes, lanes, lambda lane, s=s: step_outage(bench, lane, ref, s))
                    for s in STEPS
                ]
                outage_row = outage.result()
                down_rows = [d.result() for d in downs]
            equal = sum(k.equal for k in kills)
            hits = Counter(k.hit for k in kills)
            rows.append(
                (
                    f"SIGKILL at {args.kills} random points + re-run",
                    f"{equal}/{args.kills} equal to reference",
                    "kills hit "
                    + ", ".join(f"{p} {hits[p]}" for p in (*PHASES, "after exit") if hits[p])
                    + "; points (planned, hit) "
                    + " ".join(f"{k.planned}({k.hit}){'' if k.equal else '!'}" for k in kills),
                )
            )
            rows.append(("LLM outage for a whole run, then recovery", *outage_row))
            recovered = sum(same for same, _ in down_rows)
            rows.append(
                (
                    "database down 10 s at each step, re-run",
                    f"{recovered}/{len(STEPS)} equal to reference",
                    "; ".join(
                        f"{s}: {'ok' if same else 'DIFFERENT'} ({note})"
                        for s, (same, note) in zip(STEPS, down_rows, strict=True)
                    ),
                )
            )
        finally:
            bench.drop_all()
            for llm in emulators:
                llm.__exit__(None, None, None)

    wide_now = datetime(2024, 3, 4, 23, 59, 59, tzinfo=UTC)
    bad = malformed(args.database_url, wide_now, args.malformed_runs, args.workers)
    rows.append(("20% malformed or truncated answers", *bad))
    twice = sum(k.twice for k in kills)
    allowed = sum(k.in_flight_twice for k in kills)
    rows.append(
        (
            "requests answered twice",
            f"{twice} in the kill runs, {twice - allowed} of them not in flight at the kill; "
            f"{ref.twice} in the reference",
            "usable 200 answers by messages_sha256; in flight = answered to the killed run "
            "but not in its ledger when it died",
        )
    )
    width = max(len(r[0]) for r in rows)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"\nchaos bench, dynosaur grow --day 2024-03-01, --kills {args.kills}, "
        f"{args.workers} scenarios at once: {time.monotonic() - began:.0f} s wall, "
        f"load average {load} ({os.cpu_count()} cores)\n"
    )
    print(f"| {'scenario':<{width}} | result | details |")
    print(f"|{'-' * (width + 2)}|---|---|")
    for scenario, result, details in rows:
        print(f"| {scenario:<{width}} | {result} | {details} |")


if __name__ == "__main__":
    main()
