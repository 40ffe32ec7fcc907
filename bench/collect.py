"""Collection throughput: collect a whole Hub snapshot from the emulator with a fixed latency per
call, and compare the time it took with the ideal time of its calls.

    ideal    = calls x latency / concurrency   (every slot busy all the time, zero CPU)
    achieved = wall-clock time of collect (cards, viewer calls, parsing, database writes)

Both are measured in one run: ``calls`` is what collect actually sent. The emulator runs in a
child process, as the Hub is another machine, so its CPU does not count against ours.

    DYNOSAUR_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
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
    name = f"dynosaur_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    now = datetime.now(UTC).isoformat()
    options = HubOptions(snapshot=args.snapshot, now=now, latency=args.latency)
    server = context.Process(target=serve, args=(options, theirs), daemon=True)
    server.start()
    try:
        if not ours.poll(120):
            raise RuntimeError("the emulator did not start")
        url = ours.recv()
        settings = Settings(
            database_url=sqlalchemy_url(args.database_url)
            .set(database=name)
            .render_as_string(hide_password=False),
            reader_role=f"dynosaur_reader_{name}",
            hub_endpoint=url,
            viewer_url=url,
            hub_token=None,
            hub_concurrency=args.concurrency,
        )
        engine = open_store(settings)
        found = discover(settings, engine, window=Window.parse("1970-01-01", now))
        queue = collect_queue(engine)
        # One-off costs of a fresh process (importing `datasets`, about a second) are paid
        # before the clock starts: the figure is the steady throughput of collect's calls.
        importlib.import_module("datasets")
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
        print(f"achieved/ideal  {achieved / ideal:.2f}")
        print(f"efficiency      {ideal / achieved:.2f}  (ideal/achieved; aim >= 0.70)")
    finally:
        server.terminate()
        server.join(10)
        dispose_engines()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.exec_driver_sql(f'DROP ROLE IF EXISTS "dynosaur_reader_{name}"')
        admin.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
