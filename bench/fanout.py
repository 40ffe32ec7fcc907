"""LLM fan-out benchmark over real configs: the generate step against the LLM emulator at a fixed
latency per answer (default 300 ms), measured side by side in one run.

Configs come from the real shared Hub snapshot (``../shared/hub-snapshot``): it is discovered and
collected from the Hub emulator (no latency; not timed) into a throwaway database, and the first
``--configs`` collected configs (oldest first, default 300) are the workload. Every figure sends
the very same requests (our prompts for those configs):

1. **fan-out**: ``generate()`` in this process at ``--concurrency`` (default 32): prompts, ledger
   claims, HTTP, parsing, task rows. ``achieved/ideal`` where ideal = ceil(calls / concurrency)
   x latency (every wave takes exactly the latency and nothing else costs anything); a ratio
   below 1, higher is better.
2. **client alone**: the same requests through the LLM client at the same concurrency, no store
   and no ledger (what the client, its transport and the emulator reach on this machine right now).
   Printed as its own achieved/ideal and as fan-out / client-alone.
3. **end to end**: ``dynosaur generate --limit N`` in a fresh process (process start, imports,
   migrations check and the step), against the original's loop: one call at a time with the
   sync SDK over the same prompts, answers parsed and written to a JSON file (what the original
   scripts did), measured in full (not extrapolated) and without its process start (in its
   favour). Printed as a speed-up (original / ours).

(1), (2) and (3, ours) are medians of ``--repeat`` runs (default 3); between runs the generated
state is reset (ledger, generations, tasks; configs back to ``collected``; then ``VACUUM
ANALYZE``, so no run meets the dead rows of the one before) so every run sends every call.
The emulators run in their own processes, as real services would.

    DYNOSAUR_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/fanout.py [--configs 300] [--latency 0.3]

The URL names a server (its maintenance database); a database is created and dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

REPO = Path(__file__).resolve().parents[1]


@contextmanager
def throwaway_database(server_url: str) -> Iterator[str]:
    """A new database on the server, dropped afterwards; yields its URL."""
    from dynosaur.store import dispose_engines
    from dynosaur.store.engine import sqlalchemy_url

    admin = sa.create_engine(
        sqlalchemy_url(server_url), isolation_level="AUTOCOMMIT", poolclass=sa.NullPool
    )
    name = f"dynosaur_bench_fanout_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield sqlalchemy_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        dispose_engines()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def serve_hub(options: Any, ready: Any) -> None:
    """Child process: the Hub emulator until terminated, sending its URL once bound."""
    from dynosaur.emulators.hub import HubEmulator

    hub = HubEmulator(options)
    hub.serve_forever(on_ready=lambda: ready.send(hub.url))


def collect_snapshot(settings: Any, engine: Engine, snapshot: Path) -> int:
    """Discover and collect the whole snapshot from a Hub emulator child; collected configs."""
    from dynosaur.emulators.options import HubOptions
    from dynosaur.hub import collect, discover
    from dynosaur.model import Window
    from dynosaur.store.datasets import collect_queue

    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    now = datetime.now(UTC).isoformat()
    server = context.Process(
        target=serve_hub, args=(HubOptions(snapshot=snapshot, now=now), theirs), daemon=True
    )
    server.start()
    try:
        if not ours.poll(120):
            raise RuntimeError("the Hub emulator did not start")
        url = ours.recv()
        hub_settings = settings.model_copy(update={"hub_endpoint": url, "viewer_url": url})
        discover(hub_settings, engine, window=Window.parse("1970-01-01", now))
        collect(hub_settings, engine, collect_queue(engine))
    finally:
        server.terminate()
        server.join(30)
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text("SELECT count(*) FROM dataset_config WHERE status = 'collected'")
            ).scalar_one()
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def llm_process(latency: float) -> Iterator[str]:
    """``dynosaur emulate llm`` in a child process; yields its base URL once it answers."""
    port = free_port()
    command = [sys.executable, "-m", "dynosaur.cli.main", "emulate", "llm"]
    command += ["--port", str(port), "--latency", str(latency)]
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(base_url + "/models", timeout=1):
                    break
            except OSError:
                if child.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the LLM emulator did not start") from None
                time.sleep(0.1)
        yield base_url
    finally:
        child.terminate()
        child.wait(timeout=30)


def reset(engine: Engine) -> None:
    """Forget every generation: the next run sends every call again."""
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM task")
        conn.exec_driver_sql("DELETE FROM generation")
        conn.exec_driver_sql("DELETE FROM llm_call")
        conn.exec_driver_sql(
            "UPDATE dataset_config SET status = 'collected', reason = NULL, message = NULL, "
            "notes = '{}' WHERE status IN ('generated', 'failed', 'deferred')"
        )
    # The deletes leave dead rows and stale statistics that no real store carries (autovacuum
    # would clean them): every run starts from a store like the first run's.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")


def fan_out(settings: Any, engine: Engine, ids: list[int]) -> tuple[float, int]:
    """(seconds, calls sent) of ``generate()`` over ``ids``."""
    from dynosaur.generate import generate

    started = time.perf_counter()
    summary = generate(settings, engine, ids, run_key=f"bench:{uuid.uuid4().hex[:6]}")
    elapsed = time.perf_counter() - started
    if summary.figures["generations_succeeded"] != summary.total:
        raise RuntimeError(f"fan-out: not every config succeeded: {summary.counts}")
    return elapsed, int(summary.figures["calls_sent"])


def client_alone(settings: Any, requests: list[Any]) -> float:
    """Seconds to send ``requests`` through the LLM client alone at the same concurrency."""
    from dynosaur.generate.client import LLMClient

    async def run() -> float:
        semaphore = asyncio.Semaphore(settings.llm_concurrency)
        async with LLMClient(settings) as client:

            async def one(request: Any) -> None:
                async with semaphore:
                    await client.complete(request.model, request.messages, request.parameters)

            started = time.perf_counter()
            await asyncio.gather(*(one(r) for r in requests))
            return time.perf_counter() - started

    return asyncio.run(run())


def original_loop(base_url: str, requests: list[Any], out: Path) -> float:
    """The original scripts' way: one request at a time with the sync SDK, each answer parsed and
    the tasks written to a JSON file at the end. Seconds."""
    import openai

    from dynosaur.generate.parsing import parse_answer

    client = openai.OpenAI(base_url=base_url, api_key="bench", max_retries=2)
    started = time.perf_counter()
    results: dict[str, Any] = {}
    for request in requests:
        completion = client.chat.completions.create(
            model=request.model, messages=list(request.messages), **request.parameters
        )
        text = completion.choices[0].message.content or ""
        parsed = parse_answer(text, finish_reason=completion.choices[0].finish_reason)
        results[request.request_hash] = [t.raw for t in parsed.tasks]
    out.write_text(json.dumps(results))
    elapsed = time.perf_counter() - started
    client.close()
    return elapsed


def end_to_end(settings: Any, base_url: str, configs: int, concurrency: int) -> float:
    """Seconds of ``dynosaur generate --limit configs`` in a fresh process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DYNOSAUR_")}
    env.update(
        {
            "DYNOSAUR_DATABASE_URL": str(settings.database_url),
            "DYNOSAUR_READER_ROLE": settings.reader_role,
            "DYNOSAUR_LLM_BASE_URL": base_url,
            "DYNOSAUR_LLM_MODEL": settings.llm_model,
            "DYNOSAUR_LLM_CONCURRENCY": str(concurrency),
            "DYNOSAUR_BUDGET_USD": "-1",
            "PYTHONPATH": str(REPO),
        }
    )
    command = [sys.executable, "-m", "dynosaur.cli.main", "generate", "--limit", str(configs)]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"dynosaur generate failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")
    return elapsed


def main() -> None:
    from dynosaur.generate.jobs import plan_jobs
    from dynosaur.settings import Settings
    from dynosaur.store import dispose_engines, open_store

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--snapshot", type=Path, default=REPO.parent / "shared" / "hub-snapshot")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DYNOSAUR_BENCH_DATABASE_URL")
        or os.environ.get("DYNOSAUR_TEST_DATABASE_URL"),
    )
    args = parser.parse_args()
    if not args.database_url:
        sys.exit("set DYNOSAUR_BENCH_DATABASE_URL (a Postgres server URL) or --database-url")
    if not (args.snapshot / "index.jsonl").is_file():
        sys.exit(f"no Hub snapshot at {args.snapshot}")

    with throwaway_database(args.database_url) as url:
        settings = Settings(
            database_url=url,
            reader_role=f"dynosaur_bench_reader_{uuid.uuid4().hex[:6]}",
            llm_model="gpt-4o-mini",
            llm_concurrency=args.concurrency,
            budget_usd=None,
        )
        engine = open_store(settings)
        try:
            collected = collect_snapshot(settings, engine, args.snapshot)
            with engine.connect() as conn:
                ids = list(
                    conn.execute(
                        sa.text(
                            "SELECT id FROM dataset_config WHERE status = 'collected' "
                            "ORDER BY id LIMIT :n"
                        ),
                        {"n": args.configs},
                    ).scalars()
                )
            with llm_process(args.latency) as llm:
                settings = settings.model_copy(update={"llm_base_url": llm})
                requests = [job.request for job in plan_jobs(settings, engine, ids)]
                with tempfile.TemporaryDirectory() as folder:
                    original = original_loop(llm, requests, Path(folder) / "tasks.json")
                fanned, clients, e2e = [], [], []
                calls = 0
                for _ in range(args.repeat):
                    reset(engine)
                    seconds, calls = fan_out(settings, engine, ids)
                    fanned.append(seconds)
                    clients.append(client_alone(settings, requests))
                    reset(engine)
                    e2e.append(end_to_end(settings, llm, len(ids), args.concurrency))
        finally:
            with engine.begin() as conn:
                conn.exec_driver_sql(f'DROP OWNED BY "{settings.reader_role}"')
                conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{settings.reader_role}"')
            dispose_engines()

    ideal = math.ceil(calls / args.concurrency) * args.latency
    fan, alone, ours = (statistics.median(x) for x in (fanned, clients, e2e))
    print(
        f"workload: {len(ids)} real configs of {collected} collected from {args.snapshot.name}, "
        f"{calls} calls, {args.latency * 1000:.0f} ms per answer, {args.concurrency} in flight; "
        f"medians of {args.repeat}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} "
        "cores"
    )
    print(f"ideal (ceil(calls / concurrency) x latency): {ideal:.2f} s")
    print(f"fan-out, generate() in process: {fan:.2f} s -> achieved/ideal = {ideal / fan:.3f}")
    print(f"client alone, same requests:    {alone:.2f} s -> achieved/ideal = {ideal / alone:.3f}")
    print(f"fan-out / client alone (achieved/ideal ratio): {alone / fan:.3f}")
    print(
        f"end to end, `dynosaur generate` (process start included): {ours:.2f} s; "
        f"the original's loop (one call at a time, measured): {original:.2f} s "
        f"-> speed-up {original / ours:.1f}x"
    )
    print("runs (s): fan-out " + ", ".join(f"{x:.2f}" for x in fanned))
    print("          client alone " + ", ".join(f"{x:.2f}" for x in clients))
    print("          end to end " + ", ".join(f"{x:.2f}" for x in e2e))


if __name__ == "__main__":
    main()
