"""Selection benchmark: coreset time and coverage, LP scoring throughput, vector storage formats.

Prints, measured side by side in one run:

1. the 0.5% coreset of 200K synthetic 384-d embeddings: time, the k-center objective (max
   distance from a point to its nearest pick) and the mean distance, each as coreset/random
   (random picks of the same size; < 1 = the coreset covers better), plain k-center and with the
   mean-distance refinement;
2. with --database-url: loading stored vectors as bytea float32 vs real[] (why bytea).

Learning percentage's speed has its own bench: ``bench/lp.py``.

    .venv/bin/python bench/selection.py [--n 200000] [--database-url postgresql://...]
"""

from __future__ import annotations

import argparse
import io
import subprocess
import time

import numpy as np

from dynosaur.select.budget import resolve_budget
from dynosaur.select.coreset import coreset
from dynosaur.select.geometry import coverage, max_distance


def synthetic_embeddings(n: int, dim: int, *, topics: int = 300, seed: int = 0) -> np.ndarray:
    """Unit vectors shaped like this collection's embeddings: instances come in tasks (up to 100
    sample rows each, sharing an instruction, so they sit close together), tasks in topics of
    uneven size. Cosine similarity ~0.85 within a task, ~0.5 within a topic."""
    rng = np.random.default_rng(seed)

    def unit(x: np.ndarray) -> np.ndarray:
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)

    sizes = rng.integers(20, 101, size=2 * n // 20)
    sizes = sizes[: np.searchsorted(np.cumsum(sizes), n) + 1]
    sizes[-1] -= sizes.sum() - n
    topic_of_task = rng.choice(topics, size=len(sizes), p=rng.dirichlet(np.full(topics, 0.5)))
    topic_centres = unit(rng.normal(size=(topics, dim)))
    task_centres = unit(
        topic_centres[topic_of_task] + rng.normal(size=(len(sizes), dim)) / dim**0.5
    )
    task_of_row = np.repeat(np.arange(len(sizes)), sizes)
    noise = rng.normal(scale=0.6 / dim**0.5, size=(n, dim)).astype(np.float32)
    return unit(task_centres[task_of_row] + noise)


def bench_coreset(rows: list[tuple], n: int, dim: int, fraction: float, random_draws: int) -> None:
    """Appends to ``rows`` (printed as measured): both objectives of random picks, k-center and
    k-center + refinement, each as a ratio to random's (the median of ``random_draws`` draws)."""
    started = time.perf_counter()
    points = synthetic_embeddings(n, dim)
    budget = resolve_budget(n, fraction=fraction)
    rows.append(("coreset pool", f"{n:,} x {dim} (tasks of 20-100 rows, 300 topics), "
                 f"{budget:,} picks ({fraction:.1%})"))  # fmt: skip
    rng = np.random.default_rng(1)
    draws = [rng.choice(n, size=budget, replace=False) for _ in range(random_draws)]
    maxes = [max_distance(points, d) for d in draws]
    means = [coverage(points, d) for d in draws]
    random_max, random_mean = float(np.median(maxes)), float(np.median(means))
    rows.append(
        (f"random picks ({random_draws} draws): max / mean distance",
         f"{random_max:.4f} (draws {min(maxes):.4f}-{max(maxes):.4f}) / {random_mean:.4f} "
         f"= 1.000 / 1.000 (the baseline)")
    )  # fmt: skip
    for label, refine in (("k-center", False), ("k-center + mean refinement", True)):
        began = time.perf_counter()
        picks = coreset(points, budget, seed=0, refine=refine)
        seconds = time.perf_counter() - began
        far, mean = max_distance(points, picks.indices), coverage(points, picks.indices)
        rows.append(
            (f"{label}: max distance / random (< 0.9 wanted), mean distance / random",
             f"{far / random_max:.3f} ({far:.4f}), {mean / random_mean:.3f} ({mean:.4f}); "
             f"{len(picks):,} picks in {seconds:.1f} s")
        )  # fmt: skip
    rows.append(("coreset section", f"{time.perf_counter() - started:.0f} s in all"))


def bench_storage(url: str, rows: int, dim: int) -> list[tuple]:
    import sqlalchemy as sa

    from dynosaur.store.engine import sqlalchemy_url

    engine = sa.create_engine(sqlalchemy_url(url), poolclass=sa.NullPool)
    vectors = np.random.default_rng(0).normal(size=(rows, dim)).astype(np.float32)
    out = []
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TEMP TABLE v_bytea (id bigint, v bytea) ON COMMIT DROP")
        conn.exec_driver_sql("CREATE TEMP TABLE v_real (id bigint, v real[]) ON COMMIT DROP")
        cursor = conn.connection.dbapi_connection.cursor()

        cursor.copy_expert(
            "COPY v_bytea FROM STDIN",
            io.StringIO("".join(f"{i}\t\\\\x{v.tobytes().hex()}\n" for i, v in enumerate(vectors))),
        )
        cursor.copy_expert(
            "COPY v_real FROM STDIN",
            io.StringIO(
                "".join(
                    f"{i}\t{{{','.join(map(repr, v.tolist()))}}}\n" for i, v in enumerate(vectors)
                )
            ),
        )
        started = time.perf_counter()
        got = conn.exec_driver_sql("SELECT id, v FROM v_bytea ORDER BY id").all()
        matrix = np.frombuffer(b"".join(r[1] for r in got), dtype="<f4").reshape(rows, dim)
        bytea_s = time.perf_counter() - started
        assert np.array_equal(matrix, vectors)
        started = time.perf_counter()
        got = conn.exec_driver_sql("SELECT id, v FROM v_real ORDER BY id").all()
        matrix = np.array([r[1] for r in got], dtype=np.float32)
        real_s = time.perf_counter() - started
        assert np.allclose(matrix, vectors)
    engine.dispose()
    scale = 200_000 / rows
    out.append(
        (f"load {rows:,} x {dim} as bytea", f"{bytea_s:.2f} s (200K: ~{bytea_s * scale:.0f} s)")
    )
    out.append(
        (f"load {rows:,} x {dim} as real[]", f"{real_s:.2f} s (200K: ~{real_s * scale:.0f} s)")
    )
    out.append(("real[] / bytea load time", f"{real_s / bytea_s:.1f}x"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000, help="coreset pool size (0: skip)")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--fraction", type=float, default=0.005)
    parser.add_argument("--random-draws", type=int, default=3)
    parser.add_argument("--database-url", help="a Postgres URL (temporary tables only)")
    parser.add_argument("--store-rows", type=int, default=20_000)
    args = parser.parse_args()

    rows: list[tuple] = _Shown()
    if args.n:
        bench_coreset(rows, args.n, args.dim, args.fraction, args.random_draws)
    if args.database_url:
        rows += bench_storage(args.database_url, args.store_rows, args.dim)
    width = max(len(r[0]) for r in rows)
    load = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    print(f"selection benchmark (uptime at the end: {load})")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")


class _Shown(list):  # type: ignore[type-arg]
    """The rows, each also printed (flushed) as soon as it is measured: a run cut short still
    shows what it measured."""

    def __iadd__(self, more):  # type: ignore[no-untyped-def,override]
        for row in more:
            print(f"  {row[0]}: {row[1]}", flush=True)
        return super().__iadd__(more)

    def append(self, row):  # type: ignore[no-untyped-def,override]
        print(f"  {row[0]}: {row[1]}", flush=True)
        super().append(row)


if __name__ == "__main__":
    main()
