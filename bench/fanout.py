"""LLM fan-out benchmark: the generate step against the LLM emulator at 200 ms per answer.

Measured side by side in one run, on a throwaway database:

1. ``generate`` over N configs (default 500: N generation calls) at the configured concurrency
   (default 32), end to end: prompts, ledger claims, HTTP, parsing, task rows. Printed as
   achieved/ideal, where ideal = ceil(N / concurrency) x latency (every wave of requests takes
   exactly the latency; nothing else costs anything).
2. The same step with one call at a time, the way the original scripts ran, on a subset (default
   25 fresh configs), extrapolated linearly to N (every sequential call costs the same). Printed
   as the speed-up of (1) over it.
3. Prompt tokens of each prompt kind (the emulator's usage counts, and our local count).
4. For scale: the same N requests through the LLM client alone (no store, no ledger) at the same
   concurrency: what the SDK and the emulator reach on this machine right now. The machine's
   load average is printed too; both ratios drop on a busy machine.

The emulator runs in its own process (``dynosaur emulate llm``) as a real endpoint would.

    DYNOSAUR_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/fanout.py

The URL names a server (its maintenance database); a database is created and dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dynosaur.generate import generate
from dynosaur.generate.client import LLMClient
from dynosaur.generate.cost import count_prompt_tokens, token_method
from dynosaur.model import FieldInfo
from dynosaur.settings import Settings
from dynosaur.store import dispose_engines, open_store
from dynosaur.store.engine import sqlalchemy_url

FIELDS = [
    FieldInfo("question", "string"),
    FieldInfo("context", "string"),
    FieldInfo("answer", "string"),
    FieldInfo("label", "class_label", ("negative", "positive")),
]


@contextmanager
def throwaway_database(server_url: str) -> Iterator[str]:
    """A new database on the server, dropped afterwards; yields its URL."""
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


def insert_configs(engine: Engine, n: int, prefix: str) -> list[int]:
    """``n`` collected configs; every second dataset has a card summary (description-aware)."""
    datasets = [
        {
            "d": f"{prefix}/set-{i}",
            "url": f"https://huggingface.co/datasets/{prefix}/set-{i}",
            "summary": (
                f"Reviews of product {i} with a sentiment label, collected from a shop."
                if i % 2 == 0
                else None
            ),
        }
        for i in range(n)
    ]
    rows = [
        {
            "question": f"Is review {r} of product {{i}} positive?",
            "context": f"Review {r}: " + "the product arrived on time and works as described " * 4,
            "answer": "yes" if r % 2 else "no",
            "label": "positive" if r % 2 else "negative",
        }
        for r in range(5)
    ]
    with engine.begin() as conn:
        ids = conn.execute(
            sa.text(
                "INSERT INTO hub_dataset (dataset_id, sha, discovered_via, hub_url, summary, "
                "licenses, languages, status) SELECT x->>'d', 'sha', 'explicit', x->>'url', "
                "x->>'summary', '{mit}', '{en}', 'collected' "
                "FROM jsonb_array_elements(CAST(:rows AS jsonb)) AS x RETURNING id"
            ),
            {"rows": json.dumps(datasets)},
        ).scalars()
        return list(
            conn.execute(
                sa.text(
                    "INSERT INTO dataset_config (hub_dataset_id, config_name, fields, "
                    "sample_rows, status) SELECT h, 'default', CAST(:fields AS jsonb), "
                    "CAST(replace(:rows, '{i}', h::text) AS jsonb), 'collected' "
                    "FROM unnest(CAST(:ids AS bigint[])) AS h RETURNING id"
                ),
                {
                    "ids": list(ids),
                    "fields": json.dumps([f.to_json() for f in FIELDS]),
                    "rows": json.dumps(rows),
                },
            ).scalars()
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def emulator_process(latency: float) -> Iterator[str]:
    """``dynosaur emulate llm`` in a child process; yields its base URL once it answers."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "dynosaur.cli.main",
        "emulate",
        "llm",
        "--port",
        str(port),
        "--latency",
        str(latency),
    ]
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


def timed_run(settings: Settings, engine: Engine, ids: list[int], key: str) -> float:
    started = time.perf_counter()
    summary = generate(settings, engine, ids, run_key=key)
    elapsed = time.perf_counter() - started
    sent, wanted = summary.figures["calls_succeeded"], len(ids)
    if sent != wanted:
        raise RuntimeError(f"{key}: {sent} of {wanted} calls succeeded")
    return elapsed


def client_only(settings: Settings, engine: Engine, n: int) -> float:
    """Seconds to send ``n`` stored prompts again (fresh messages) through the client alone."""
    with engine.connect() as conn:
        prompts = [
            row.messages
            for row in conn.execute(
                sa.text("SELECT messages FROM llm_call ORDER BY id LIMIT :n"), {"n": n}
            )
        ]

    async def run() -> float:
        semaphore = asyncio.Semaphore(settings.llm_concurrency)
        async with LLMClient(settings) as client:

            async def one(i: int) -> None:
                messages = [*prompts[i % len(prompts)], {"role": "user", "content": f"#{i}"}]
                async with semaphore:
                    await client.complete(settings.llm_model, messages, {"max_tokens": 512})

            started = time.perf_counter()
            await asyncio.gather(*(one(i) for i in range(n)))
            return time.perf_counter() - started

    return asyncio.run(run())


def prompt_tokens(engine: Engine, model: str) -> dict[str, tuple[float, float]]:
    """Per prompt kind: mean prompt tokens as the endpoint counted them, and as we count."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT g.prompt_kind, c.prompt_tokens, c.messages FROM generation g "
                "JOIN llm_call c ON c.id = g.llm_call_id"
            )
        ).all()
    out: dict[str, tuple[float, float]] = {}
    for kind in sorted({r.prompt_kind for r in rows}):
        mine = [r for r in rows if r.prompt_kind == kind]
        out[kind] = (
            statistics.mean(r.prompt_tokens for r in mine),
            statistics.mean(count_prompt_tokens(r.messages, model) for r in mine),
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--sequential-subset", type=int, default=25)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DYNOSAUR_BENCH_DATABASE_URL")
        or os.environ.get("DYNOSAUR_TEST_DATABASE_URL"),
    )
    args = parser.parse_args()
    if not args.database_url:
        sys.exit("set DYNOSAUR_BENCH_DATABASE_URL (a Postgres server URL) or --database-url")

    with throwaway_database(args.database_url) as url, emulator_process(args.latency) as llm:
        settings = Settings(
            database_url=url,
            reader_role=f"dynosaur_bench_reader_{uuid.uuid4().hex[:6]}",
            llm_base_url=llm,
            llm_model="gpt-4o-mini",
            llm_concurrency=args.concurrency,
            budget_usd=None,
        )
        engine = open_store(settings)
        try:
            fan_ids = insert_configs(engine, args.calls, "fan")
            seq_ids = insert_configs(engine, args.sequential_subset, "seq")
            fanned = timed_run(settings, engine, fan_ids, "bench:fan-out")
            one_at_a_time = settings.model_copy(update={"llm_concurrency": 1})
            subset = timed_run(one_at_a_time, engine, seq_ids, "bench:sequential")
            tokens = prompt_tokens(engine, settings.llm_model)
            transport = client_only(settings, engine, args.calls)
        finally:
            with engine.begin() as conn:
                conn.exec_driver_sql(f'DROP OWNED BY "{settings.reader_role}"')
                conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{settings.reader_role}"')
            dispose_engines()

    ideal = math.ceil(args.calls / args.concurrency) * args.latency
    sequential = subset / args.sequential_subset * args.calls
    print(f"fan-out: {args.calls} generation calls, {args.latency * 1000:.0f} ms per answer")
    print(
        f"  concurrency {args.concurrency}: {fanned:.2f} s "
        f"(ideal {ideal:.2f} s) -> achieved/ideal = {ideal / fanned:.3f}"
    )
    print(
        f"  one call at a time: {subset:.2f} s for {args.sequential_subset} calls, "
        f"extrapolated to {args.calls}: {sequential:.1f} s"
    )
    print(f"  speed-up at concurrency {args.concurrency}: {sequential / fanned:.1f}x")
    print(
        f"  for scale, the client alone (no store): {transport:.2f} s "
        f"-> achieved/ideal = {ideal / transport:.3f}; load average {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} cores"
    )
    print(f"prompt tokens per call (endpoint's count / local {token_method(settings.llm_model)}):")
    for kind, (endpoint, local) in tokens.items():
        print(f"  {kind}: {endpoint:.0f} / {local:.0f}")


if __name__ == "__main__":
    main()
