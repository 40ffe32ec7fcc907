"""A real Hub day against the emulator with the Hub's quotas on: discover and collect N new
datasets (default 2,000, made from the shared snapshot with new ids and creation dates across one
day), the anonymous user's quotas enforced per bucket at their real rate but over short windows
(default 5 s instead of 5 minutes: the same requests per second, a bench of minutes).

Prints, measured in one run:

    Hub calls per dataset      requests sent (Hub API, file resolves, viewer), retries included
    real-time duration         of such a day at the real quotas (the busiest bucket's calls at its
                               documented anonymous rate: 500 API calls, 3,000 resolves / 5 min)
    efficiency                 quota-bound ideal / wall time (ideal = the busiest bucket's calls
                               at the allowed rate; aim >= 0.8)
    429s, rate-limited         answers 429 met, and datasets deferred or failed for rate limits
                               (must be 0: the client paces itself to the quota)

    DYNOSAUR_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/hub_day.py [--datasets 2000] [--window 5] [--latency 0.02]
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# The Hub's documented quotas per 5-minute window, anonymous (per IP address).
REAL_WINDOW_S = 300
ANONYMOUS = {"api": 500, "resolvers": 3000, "pages": 100}


def make_day(shared: Path, out: Path, n: int, day: str) -> None:
    """A snapshot of ``n`` datasets created across ``day`` (UTC), each a copy of a shared
    snapshot's dataset (its files linked, not copied) under a new id and sha."""
    import hashlib
    import json
    from datetime import datetime, timedelta

    entries = [json.loads(line) for line in (shared / "index.jsonl").open() if line.strip()]
    start = datetime.fromisoformat(f"{day}T00:00:00+00:00")
    (out / "datasets").mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(n):
        source = entries[i % len(entries)]
        name = source["id"].split("/")[-1]
        new_id = f"day-{i:05d}/{name}"
        moment = start + timedelta(seconds=(i + 0.5) * 86400 / n)
        stamp = moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        (out / "datasets" / new_id.split("/")[0]).mkdir(exist_ok=True)
        (out / "datasets" / new_id).symlink_to(shared / "datasets" / source["id"])
        sha = hashlib.sha1(f"{new_id}\x00{source['sha']}".encode()).hexdigest()
        entry = {**source, "id": new_id, "created_at": stamp, "last_modified": stamp}
        lines.append(json.dumps({**entry, "sha": sha}))
    (out / "index.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def serve(options: Any, ready: Any) -> None:
    """Child process: run the Hub emulator until terminated, sending its URL once bound."""
    from dynosaur.emulators.hub import HubEmulator

    hub = HubEmulator(options)
    hub.serve_forever(on_ready=lambda: ready.send(hub.url))


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json
    import math
    import multiprocessing
    import os
    import tempfile
    import time
    import uuid
    from collections import Counter

    import sqlalchemy as sa

    from dynosaur.emulators.options import HubOptions
    from dynosaur.hub import collect, discover
    from dynosaur.model import Window
    from dynosaur.reasons import Reason
    from dynosaur.settings import Settings
    from dynosaur.store import dispose_engines, open_store
    from dynosaur.store.datasets import collect_queue
    from dynosaur.store.engine import sqlalchemy_url

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "hub-snapshot")
    parser.add_argument("--datasets", type=int, default=2000)
    parser.add_argument("--window", type=int, default=5, help="quota window, seconds (real: 300)")
    parser.add_argument("--latency", type=float, default=0.02, help="seconds per Hub call")
    parser.add_argument("--day", default="2024-06-03")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DYNOSAUR_BENCH_DATABASE_URL")
        or os.environ.get("DYNOSAUR_TEST_DATABASE_URL"),
    )
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("set DYNOSAUR_BENCH_DATABASE_URL or pass --database-url")
    if not (args.shared / "index.jsonl").is_file():
        parser.error(f"no snapshot at {args.shared}")

    work = Path(tempfile.mkdtemp(prefix="dynosaur-hub-day-"))
    make_day(args.shared, work / "snapshot", args.datasets, args.day)
    scale = args.window / REAL_WINDOW_S
    quotas = {bucket: max(1, round(q * scale)) for bucket, q in ANONYMOUS.items()}
    log_path = work / "requests.jsonl"
    day_end = f"{args.day}T23:59:59+00:00"
    options = HubOptions(
        snapshot=work / "snapshot",
        now=day_end,
        latency=args.latency,
        quota_window=args.window,
        quota_api=quotas["api"],
        quota_resolvers=quotas["resolvers"],
        quota_pages=quotas["pages"],
        request_log_path=log_path,
    )
    admin = sa.create_engine(
        sqlalchemy_url(args.database_url), isolation_level="AUTOCOMMIT", poolclass=sa.NullPool
    )
    name = f"dynosaur_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    server = context.Process(target=serve, args=(options, theirs), daemon=True)
    server.start()
    try:
        if not ours.poll(300):
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
            # The documented anonymous quotas, at the same scale as the emulator's windows.
            hub_quota_api=quotas["api"],
            hub_quota_resolvers=quotas["resolvers"],
            hub_quota_window_s=args.window,
        )
        engine = open_store(settings)
        wall0 = time.perf_counter()
        found = discover(settings, engine, window=Window.parse(args.day, day_end))
        summary = collect(settings, engine, collect_queue(engine))
        wall = time.perf_counter() - wall0
    finally:
        server.terminate()
        server.join(10)
        dispose_engines()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.exec_driver_sql(f'DROP ROLE IF EXISTS "dynosaur_reader_{name}"')
        admin.dispose()

    log = [json.loads(line) for line in log_path.read_text(encoding="utf-8").splitlines()]
    per_bucket = Counter(entry.get("bucket") or "viewer" for entry in log)
    refused = sum(1 for entry in log if entry["status"] == 429)
    rate_limited = sum(
        n
        for (status, reason), n in summary.counts.items()
        if reason == Reason.RATE_LIMITED and status in ("deferred", "failed")
    )
    # The quota-bound ideal: the busiest bucket's calls at its allowed rate; the same calls at
    # the real quotas give the day's real-time duration.
    bound = {b: per_bucket[b] / (quotas[b] / args.window) for b in quotas if per_bucket[b]}
    busiest = max(bound, key=lambda b: bound[b])
    ideal = bound[busiest]
    real = {b: per_bucket[b] / (ANONYMOUS[b] / REAL_WINDOW_S) for b in bound}
    windows = math.ceil(per_bucket[busiest] / ANONYMOUS[busiest])
    n = len(found.new_ids)
    print(f"datasets        {n} new ({args.datasets} made from {args.shared})")
    print(f"outcome         {summary.by_status()}")
    print(
        f"Hub calls       {len(log)} ({len(log) / max(1, n):.2f} per dataset): "
        + ", ".join(f"{b} {c}" for b, c in sorted(per_bucket.items()))
    )
    print(
        f"quotas          {', '.join(f'{b} {q}' for b, q in quotas.items())} per {args.window} s "
        f"(anonymous, scaled from {REAL_WINDOW_S} s)"
    )
    print(
        f"real time       {real[busiest]:.0f} s at the real anonymous rate ({busiest}: "
        f"{per_bucket[busiest]} calls, {windows} window(s) of {REAL_WINDOW_S} s)"
    )
    print(f"ideal           {ideal:.1f} s  ({busiest} calls / allowed rate)")
    print(f"wall            {wall:.1f} s  (discover + collect)")
    print(f"efficiency      {ideal / wall:.2f}  (ideal / wall; aim >= 0.8)")
    print(f"429s            {refused} answers")
    print(f"rate-limited    {rate_limited} datasets deferred or failed for rate limits (must be 0)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
