"""Selection benchmark: coreset time and coverage, LP scoring throughput, vector storage formats.

Prints, measured side by side in one run:

1. the 0.5% coreset of 200K synthetic 384-d embeddings: time, the k-center objective (max
   distance from a point to its nearest pick) and the mean distance, each as coreset/random
   (random picks of the same size; < 1 = the coreset covers better), plain k-center and with the
   mean-distance refinement;
2. learning percentage on real instance texts (rows of the shared Hub snapshot, ~500
   characters): the tiny scorer on the CPU, 3 epochs + 4 scoring passes over --lp-samples
   (10K: the goal is under 2 minutes), samples/s of scoring and training; a GPT-2-small-sized
   scorer on the CPU from a few batches (an estimate), and on the GPU when CUDA is visible;
3. with --database-url: loading stored vectors as bytea float32 vs real[] (why bytea).

    .venv/bin/python bench/selection.py [--n 200000] [--database-url postgresql://...]
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
import time
from pathlib import Path

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


def bench_coreset(n: int, dim: int, fraction: float, random_draws: int) -> list[tuple]:
    points = synthetic_embeddings(n, dim)
    budget = resolve_budget(n, fraction=fraction)
    rows: list[tuple] = [("coreset pool", f"{n:,} x {dim} (tasks of 20-100 rows, 300 topics)")]
    rng = np.random.default_rng(1)
    draws = [rng.choice(n, size=budget, replace=False) for _ in range(random_draws)]
    random_max = float(np.median([max_distance(points, d) for d in draws]))
    random_mean = float(np.median([coverage(points, d) for d in draws]))
    for label, refine in (("coreset (k-center)", False), ("coreset + mean refinement", True)):
        started = time.perf_counter()
        picks = coreset(points, budget, seed=0, refine=refine)
        seconds = time.perf_counter() - started
        far, mean = max_distance(points, picks.indices), coverage(points, picks.indices)
        rows += [
            (f"{label}: picks / time", f"{len(picks):,} ({fraction:.1%}) in {seconds:.1f} s"),
            (
                f"{label}: max distance, coreset/random (< 0.9 wanted)",
                f"{far:.4f} / {random_max:.4f} = {far / random_max:.3f}",
            ),
            (
                f"{label}: mean distance, coreset/random",
                f"{mean:.4f} / {random_mean:.4f} = {mean / random_mean:.3f}",
            ),
        ]
    rows.append(("random picks", f"median of {random_draws} draws of {budget:,}"))
    return rows


SNAPSHOT = Path(__file__).resolve().parents[2] / "shared" / "hub-snapshot"


def snapshot_samples(n: int, snapshot: Path = SNAPSHOT, *, target_chars: int = 530) -> list[tuple]:
    """``n`` instances made from the real sample rows of the shared Hub snapshot, repeated as
    needed: per row, the instruction names the output field, the input lists the other fields
    (``name: value``), the output is the last field. Rows are kept in snapshot order until the
    mean length is about ``target_chars`` (the collection's instances: ~530 characters)."""
    found: list[tuple[str, str, str]] = []
    for rows in sorted(snapshot.glob("datasets/*/rows/*/*.jsonl")):
        with rows.open(encoding="utf-8") as lines:
            head = [line for _, line in zip(range(20), lines, strict=False)]
        for line in head:
            row = {
                k: v for k, v in json.loads(line).items() if isinstance(v, str | int) and k != "id"
            }
            if len(row) < 2:
                continue
            *inputs, output = row.items()
            text = "\n".join(f"{k}: {v}" for k, v in inputs)
            sample = (f"Given the {', '.join(k for k, _ in inputs)}, give the {output[0]}.",
                      text, str(output[1]))  # fmt: skip
            if len(str(output[1]).strip()) > 0 and sum(map(len, sample)) <= 20 * target_chars:
                found.append(sample)
    if not found:
        raise SystemExit(f"no sample rows under {snapshot}")
    # Keep the mix of lengths near the target mean: drop the longest until it is reached.
    sizes = np.array([sum(map(len, x)) for x in found])
    by_size = np.argsort(sizes, kind="stable")
    means = np.cumsum(sizes[by_size]) / np.arange(1, len(found) + 1)
    count = max(1, int(np.searchsorted(means, target_chars, side="right")))
    found = [found[i] for i in np.sort(by_size[:count])]
    return [found[i % len(found)] for i in range(n)]


def bench_scoring(
    samples: int,
    device: str,
    folder: Path,
    *,
    batch_size: int,
    full: bool,
    batches: int = 3,
    **model: int,
) -> list[tuple]:
    """LP throughput of a scorer on real instance texts (:func:`snapshot_samples`): with
    ``full``, the whole of LP (P0, then 3 epochs each followed by a scoring pass) over
    ``samples`` timed end to end; otherwise ``batches`` batches of each kind (an estimate)."""
    import torch

    from dynosaur.select.scorer import (
        SCORING_BATCH_FACTOR,
        Encoded,
        TrainingPlan,
        encode_all,
        load_scorer,
        perplexities,
        prompt_text,
        train_epoch,
    )
    from dynosaur.select.tiny import make_tiny_scorer

    data = snapshot_samples(samples)
    chars = np.mean([sum(map(len, x)) for x in data])
    path = make_tiny_scorer((prompt_text(a, b) + c for a, b, c in data), folder, **model)
    scorer = load_scorer(str(path), device=device)
    params = sum(p.numel() for p in scorer.model.parameters())
    plan = TrainingPlan(epochs=3, batch_size=batch_size, learning_rate=1e-3, max_tokens=512)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    label = f"{params / 1e6:.1f}M params, {device}, batch {batch_size}"
    started = time.perf_counter()
    encoded = encode_all(scorer.tokenizer, data, plan.max_tokens)
    encode_s = time.perf_counter() - started
    tokens = float(encoded.lengths().mean())
    if not full:
        score_n, train_n = batch_size * SCORING_BATCH_FACTOR * batches, batch_size * batches
        encoded = Encoded(
            encoded.ids[: max(score_n, train_n)], encoded.starts[: max(score_n, train_n)]
        )
    perplexities(scorer, Encoded(encoded.ids[:batch_size], encoded.starts[:batch_size]), plan)
    optimizer = torch.optim.AdamW(scorer.model.parameters(), lr=plan.learning_rate)
    score_s = train_s = 0.0
    scored = trained = 0
    for epoch in range(plan.epochs + 1 if full else 1):
        part = encoded if full else Encoded(encoded.ids[:score_n], encoded.starts[:score_n])
        sync()
        started = time.perf_counter()
        perplexities(scorer, part, plan)
        sync()
        score_s, scored = score_s + time.perf_counter() - started, scored + len(part)
        if epoch == plan.epochs and full:
            break
        part = encoded if full else Encoded(encoded.ids[:train_n], encoded.starts[:train_n])
        started = time.perf_counter()
        train_epoch(scorer, optimizer, part, plan, epoch + 1)
        sync()
        train_s, trained = train_s + time.perf_counter() - started, trained + len(part)
    rows = [
        (f"LP texts ({label})", f"{len(data):,} real snapshot rows, {chars:.0f} chars, "
         f"{tokens:.0f} tokens on average; tokenised once in {encode_s:.1f} s"),
        (f"LP scoring throughput ({label})", f"{scored / score_s:,.1f} samples/s"),
        (f"LP training throughput ({label})", f"{trained / train_s:,.1f} samples/s"),
    ]  # fmt: skip
    per_10k = (4 * 10_000 / (scored / score_s) + 3 * 10_000 / (trained / train_s)) / 60
    if full:
        rows.append(
            (f"LP, 3 epochs + 4 scoring passes over {samples:,} ({label})",
             f"{(score_s + train_s + encode_s):.1f} s (10K at this rate: {per_10k:.1f} min)")
        )  # fmt: skip
    else:
        rows.append((f"LP, 3 epochs + scoring, 10K samples, estimated ({label})",
                     f"{per_10k:.1f} min (from {batches} batches of each kind)"))  # fmt: skip
    return rows


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
    parser.add_argument("--lp-samples", type=int, default=10_000, help="LP pool (real texts)")
    parser.add_argument("--batch-size", type=int, default=8, help="LP training batch")
    parser.add_argument("--gpt2-batches", type=int, default=2, help="0: skip GPT-2-small on CPU")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--database-url", help="a Postgres URL (temporary tables only)")
    parser.add_argument("--store-rows", type=int, default=20_000)
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    rows: list[tuple] = _Shown()
    if args.n:
        rows += bench_coreset(args.n, args.dim, args.fraction, args.random_draws)
    with tempfile.TemporaryDirectory() as tmp:
        rows += bench_scoring(
            args.lp_samples, "cpu", Path(tmp) / "tiny", batch_size=args.batch_size, full=True
        )
        gpt2_small = {"layers": 12, "dim": 768, "heads": 12, "embedding_rows": 50_257}
        if args.gpt2_batches:
            rows += bench_scoring(
                args.lp_samples, "cpu", Path(tmp) / "gpt2-cpu", batch_size=args.batch_size,
                full=False, batches=args.gpt2_batches, **gpt2_small,
            )  # fmt: skip
        if torch.cuda.is_available():
            rows += bench_scoring(
                args.lp_samples, "cuda", Path(tmp) / "gpt2-cuda", batch_size=args.batch_size,
                full=True, **gpt2_small,
            )  # fmt: skip
        else:
            rows.append(("LP on GPU (GPT-2-small-sized)", "skipped: no CUDA device visible"))
    if args.database_url:
        rows += bench_storage(args.database_url, args.store_rows, args.dim)
    width = max(len(r[0]) for r in rows)
    print(f"selection benchmark (torch {torch.__version__}, {torch.get_num_threads()} threads)")
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
