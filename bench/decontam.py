"""Cost of the benchmark check: curate's :func:`dynosaur.decontam.screen` over a 10K-instance
batch against an index of 100K and then 1M benchmark n-grams, measured side by side in one run
(medians of 3). The lookup is one primary-key probe per distinct n-gram of the batch, so the
cost should follow the batch, not the index: the ratio 1M / 100K should stay near 1.

    DYNOSAUR_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/decontam.py [--instances 10000]

The URL names a server (its maintenance database); a database is created and dropped. The
batch's instances are random text that matches no benchmark (the common case: nothing is
recorded); hashing and the lookup are also timed on their own.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

REPO = Path(__file__).resolve().parents[1]


class Inst(NamedTuple):
    row_index: int
    input: str
    output: str


@dataclass
class Cand:
    id: int


@dataclass(frozen=True)
class Built:
    instances: tuple[Inst, ...]


def main(argv: list[str] | None = None) -> int:
    import argparse
    import os
    import random
    import statistics
    import time
    import uuid

    import sqlalchemy as sa

    sys.path.insert(0, str(REPO))
    from dynosaur import decontam
    from dynosaur.settings import Settings
    from dynosaur.store import benchmarks as bench_store
    from dynosaur.store import dispose_engines, open_store
    from dynosaur.store.engine import sqlalchemy_url

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=10_000)
    parser.add_argument("--sizes", default="100000,1000000")
    args = parser.parse_args(argv)
    server = os.environ.get("DYNOSAUR_BENCH_DATABASE_URL")
    if not server:
        print("set DYNOSAUR_BENCH_DATABASE_URL to a Postgres server URL", file=sys.stderr)
        return 2
    sizes = [int(s) for s in args.sizes.split(",")]

    rng = random.Random(13)
    vocab = [f"w{i}" for i in range(20_000)]

    def text(n: int) -> str:
        return " ".join(rng.choices(vocab, k=n))

    batch = [
        (Cand(t), Built(tuple(Inst(r, text(60), text(20)) for r in range(10))))
        for t in range(args.instances // 10)
    ]
    n_instances = sum(len(b.instances) for _, b in batch)

    admin = sa.create_engine(
        sqlalchemy_url(server), isolation_level="AUTOCOMMIT", poolclass=sa.NullPool
    )
    name = f"dynosaur_bench_decontam_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sqlalchemy_url(server).set(database=name).render_as_string(hide_password=False)
    try:
        settings = Settings(database_url=url, reader_role=f"bench_reader_{name[-8:]}")
        engine = open_store(settings)
        results: dict[int, dict[str, float]] = {}
        stored = 0
        for size in sizes:
            # Grow the index to `size` n-grams (random 64-bit hashes, one benchmark per 100K).
            while stored < size:
                step = min(100_000, size - stored)
                hashes = {rng.getrandbits(64) - 2**63 for _ in range(step)}
                bench_store.store_index(
                    engine, f"bench/b{stored}", "default", "test", "sha", step, hashes
                )
                stored += step
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE benchmark_ngram")
            runs: dict[str, list[float]] = {"screen": [], "hashing": [], "lookup": []}
            for attempt in range(4):  # the first one warms the caches and is not counted
                t0 = time.perf_counter()
                grams = set()
                for _cand, built in batch:
                    for inst in built.instances:
                        grams |= decontam.ngram_hashes(inst.input)
                        grams |= decontam.ngram_hashes(inst.output)
                t1 = time.perf_counter()
                with engine.connect() as conn:
                    found = bench_store.matching(conn, sorted(grams))
                t2 = time.perf_counter()
                with engine.begin() as conn:
                    kept = decontam.screen(conn, 1, list(batch), {})
                t3 = time.perf_counter()
                assert not found and len(kept) == len(batch)
                if attempt == 0:
                    continue
                runs["hashing"].append(t1 - t0)
                runs["lookup"].append(t2 - t1)
                runs["screen"].append(t3 - t2)
            results[size] = {k: statistics.median(v) for k, v in runs.items()}
            print(
                f"index {size:>9,} n-grams: screen {results[size]['screen']:.3f}s "
                f"(hashing {results[size]['hashing']:.3f}s, lookup of {len(grams):,} n-grams "
                f"{results[size]['lookup']:.3f}s) for {n_instances:,} instances, medians of 3"
            )
        small, large = sizes[0], sizes[-1]
        for key in ("screen", "lookup"):
            ratio = results[large][key] / results[small][key]
            print(f"{key} ratio {large:,} / {small:,} n-grams: {ratio:.2f}")
        engine.dispose()
    finally:
        dispose_engines()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.exec_driver_sql(f'DROP ROLE IF EXISTS "bench_reader_{name[-8:]}"')
        admin.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
