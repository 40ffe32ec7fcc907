"""Collection throughput: collect a whole Hub snapshot from the emulator with a fixed latency per
call, beside a transport control that replays the very same requests with plain httpx.

    ideal       = calls x latency / concurrency   (every slot busy all the time, zero CPU)
    efficiency  = ideal / wall time               (1.0 = at the wire's limit; higher is better)
    collect     = discover's rows collected: cards, viewer calls, parsing, database writes
    control     = the requests collect sent (the emulator's request log), replayed by plain
                  httpx.AsyncClient at the same concurrency: what the transport alone achieves

The figure that matters is collect's efficiency as a share of the control's (goal >= 0.8): the
part of the wire's limit that collect's own work (CPU, writes) gives away. The emulator runs in a
child process, as the Hub is another machine, so its CPU does not count against ours.

    DYNOSAUR_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \
        .venv/bin/python bench/collect.py [--snapshot ../shared/hub-snapshot] [--latency 0.05]

The URL names a server (its maintenance database); a database is created and dropped.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def serve(options: Any, ready: Any) -> None:
    """Child process: run the Hub emulator until terminated, sending its URL once bound."""
    from dynosaur.emulators.hub import HubEmulator

    hub = HubEmulator(options)
    hub.serve_forever(on_ready=lambda: ready.send(hub.url))


def process_cpu(pid: int) -> float | None:
    """CPU seconds a process has used so far (Linux /proc; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    import os

    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def replay(url: str, log_path: Path, concurrency: int, skip: int) -> tuple[float, int]:
    """Replay the logged GETs (from line ``skip`` on) with plain httpx at ``concurrency``:
    (wall seconds, requests)."""
    import asyncio
    import json
    import time
    from urllib.parse import urlencode

    import httpx

    lines = log_path.read_text(encoding="utf-8").splitlines()[skip:]
    urls = []
    for line in lines:
        entry = json.loads(line)
        query = urlencode(entry["query"])
        urls.append(f"{url}{entry['path']}" + (f"?{query}" if query else ""))

    async def run() -> float:
        queue: asyncio.Queue[str] = asyncio.Queue()
        for item in urls:
            queue.put_nowait(item)
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(limits=limits, timeout=60) as client:

            async def worker() -> None:
                while not queue.empty():
                    response = await client.get(queue.get_nowait())
                    await response.aread()

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return time.perf_counter() - started

    return asyncio.run(run()), len(urls)


def main(argv: list[str] | None = None) -> int:
    import argparse
    import importlib
    import multiprocessing
    import os
    import time
    import uuid

    import sqlalchemy as sa

    from dynosaur.emulators.options import HubOptions
    from dynosaur.hub import collect, discover
    from dynosaur.model import Window
    from dynosaur.settings import Settings
    from dynosaur.store import dispose_engines, open_store
    from dynosaur.store.datasets import collect_queue
    from dynosaur.store.engine import sqlalchemy_url

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--snapshot", type=Path, default=REPO.parent / "shared" / "hub-snapshot")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per Hub call")
    parser.add_argument("--concurrency", type=int, default=Settings().hub_concurrency)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DYNOSAUR_BENCH_DATABASE_URL")
        or os.environ.get("DYNOSAUR_TEST_DATABASE_URL"),
        help="a Postgres server URL (DYNOSAUR_BENCH_DATABASE_URL)",
    )
    parser.add_argument("--profile", type=Path, help="write a cProfile of collect to this file")
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("set DYNOSAUR_BENCH_DATABASE_URL or pass --database-url")
    if not (args.snapshot / "index.jsonl").is_file():
        parser.error(f"no snapshot at {args.snapshot}")

    admin = sa.create_engine(
        sqlalchemy_url(args.database_url), isolation_level="AUTOCOMMIT", poolclass=sa.NullPool
    )
    names: list[str] = []
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    now = datetime.now(UTC).isoformat()
    import tempfile

    log_path = Path(tempfile.mkdtemp(prefix="dynosaur-bench-")) / "requests.jsonl"
    options = HubOptions(
        snapshot=args.snapshot, now=now, latency=args.latency, request_log_path=log_path
    )
    server = context.Process(target=serve, args=(options, theirs), daemon=True)
    server.start()

    def store_settings(url: str) -> Settings:
        name = f"dynosaur_bench_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        names.append(name)
        return Settings(
            database_url=sqlalchemy_url(args.database_url)
            .set(database=name)
            .render_as_string(hide_password=False),
            reader_role=f"dynosaur_reader_{name}",
            hub_endpoint=url,
            viewer_url=url,
            hub_token=None,
            hub_concurrency=args.concurrency,
        )

    try:
        if not ours.poll(120):
            raise RuntimeError("the emulator did not start")
        url = ours.recv()
        # A first, untimed collect into its own store warms the emulator's caches (cards,
        # infos, rows read on first use), so collect and the control meet the same server.
        warm = store_settings(url)
        warm_engine = open_store(warm)
        discover(warm, warm_engine, window=Window.parse("1970-01-01", now))
        collect(warm, warm_engine, collect_queue(warm_engine))
        settings = store_settings(url)
        engine = open_store(settings)
        found = discover(settings, engine, window=Window.parse("1970-01-01", now))
        queue = collect_queue(engine)
        # One-off costs of a fresh process (importing `datasets`, about a second) are paid
        # before the clock starts: the figure is the steady throughput of collect's calls.
        importlib.import_module("datasets")
        skip = len(log_path.read_text(encoding="utf-8").splitlines())  # earlier requests
        server0 = process_cpu(server.pid or 0)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        if args.profile:
            import cProfile

            with cProfile.Profile() as profile:
                summary = collect(settings, engine, queue)
            profile.dump_stats(args.profile)
        else:
            summary = collect(settings, engine, queue)
        achieved = time.perf_counter() - wall0
        cpu = time.process_time() - cpu0
        server1 = process_cpu(server.pid or 0)
        server_cpu = f"{server1 - server0:.2f} s" if server0 is not None and server1 else "?"
        calls = int(summary.figures["requests"])
        ideal = calls * args.latency / args.concurrency
        control, replayed = replay(url, log_path, args.concurrency, skip)
        control_ideal = replayed * args.latency / args.concurrency
        print(f"snapshot        {args.snapshot} ({len(found.new_ids)} datasets)")
        print(f"outcome         {summary.by_status()}")
        print(f"calls           {calls} ({calls / max(1, len(queue)):.2f} per dataset)")
        print(
            f"latency         {args.latency * 1000:.0f} ms per call, {args.concurrency} in flight"
        )
        print(f"ideal           {ideal:.2f} s  (calls x latency / concurrency)")
        print(
            f"achieved        {achieved:.2f} s  (CPU: collect {cpu:.2f} s, emulator {server_cpu})"
        )
        busy = float(summary.figures["request_seconds"])
        print(f"per call        {busy / calls * 1000:.1f} ms in a slot on average")
        print(f"slots busy      {busy / (achieved * args.concurrency):.0%} of the time")
        print(f"collect         {ideal / achieved:.2f}  efficiency (ideal/wall; 1.0 = wire limit)")
        print(
            f"control         {control_ideal / control:.2f}  efficiency of plain httpx replaying "
            f"the same {replayed} requests ({control:.2f} s)"
        )
        share = (ideal / achieved) / (control_ideal / control)
        print(f"collect/control {share:.2f}  (goal >= 0.80)")
    finally:
        server.terminate()
        server.join(10)
        dispose_engines()
        with admin.connect() as conn:
            for name in names:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                conn.exec_driver_sql(f'DROP ROLE IF EXISTS "dynosaur_reader_{name}"')
        admin.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
