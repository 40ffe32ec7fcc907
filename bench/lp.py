"""Learning percentage at real speed: LP over real instance texts, timed end to end.

Prints, measured in one run:

1. the texts: the demo's version 3 (its whole pool: the instances of versions 1-3), repeated to
   ``--samples`` (10K); ``--store URL`` reads them from a store where the demo ran,
   ``--demo-server URL`` first runs ``dynosaur demo`` into a throwaway database on that server
   (``dynosaur_bench_lp``, recreated; its files in a temporary folder). Without either: real
   sample rows of the shared Hub snapshot (``--snapshot``), ~530 characters each;
2. the tiny scorer (``dynosaur.select.tiny``) on the CPU: the whole of LP as selections run it
   (:func:`~dynosaur.select.scorer.perplexity_traces`: tokenise once, P0, then 3 x (an epoch,
   a scoring pass)), its wall time against the 120 s goal, and samples/s of scoring and of
   training;
3. a GPT-2-small-sized scorer (124M parameters, ``GPT2Config``'s defaults, random weights) on
   the CPU over ``--gpt2-samples`` of the same texts (P0, 1 epoch, P1): measured samples/s;
4. the same on a GPU when CUDA is visible (over all the samples), else a line saying none is.

    PYTHONPATH=. .venv/bin/python bench/lp.py --demo-server postgresql://postgres@127.0.0.1/postgres
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BENCH_DATABASE = "dynosaur_bench_lp"
GPT2_SMALL = {
    "layers": 12,
    "dim": 768,
    "heads": 12,
    "context": 1024,
    "embedding_rows": 50_257,
    "dropout": 0.1,  # GPT2Config's defaults: dropout 0.1 everywhere, gelu_new
    "activation": "gelu_new",
}


def default_snapshot() -> Path:
    shared = os.environ.get("DYNOSAUR_TEST_SHARED")
    return (Path(shared) if shared else ROOT.parent / "shared") / "hub-snapshot"


def run_demo(server: str, database: str = BENCH_DATABASE) -> str:
    """``dynosaur demo`` into ``database`` on ``server`` (its files in a temporary folder, so
    the user's own demo folder is untouched); returns the database's URL."""
    with tempfile.TemporaryDirectory() as data_dir:
        env = dict(os.environ, DYNOSAUR_DATABASE_URL=server, DYNOSAUR_DATA_DIR=data_dir)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        command = [sys.executable, "-m", "dynosaur.cli.main", "demo", "--database", database]
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"the demo failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return server.rsplit("/", 1)[0] + "/" + database


def store_samples(url: str, version: int) -> list[tuple[str, str, str]]:
    """(instruction, input, output) of every instance of ``version``'s pool, in id order: the
    pool a selection over that version scores."""
    import sqlalchemy as sa

    from dynosaur.store.engine import sqlalchemy_url
    from dynosaur.store.selections import instance_fields, instance_pool

    engine = sa.create_engine(sqlalchemy_url(url), poolclass=sa.NullPool)
    try:
        pool = instance_pool(engine, version)
        return instance_fields(engine, pool.instance_id)
    finally:
        engine.dispose()


def snapshot_samples(snapshot: Path, *, target_chars: int = 530) -> list[tuple[str, str, str]]:
    """Instances made from the real sample rows of the shared Hub snapshot: per row, the
    instruction names the output field, the input lists the other fields (``name: value``), the
    output is the last field. The shortest rows are kept until the mean length is about
    ``target_chars`` (the live collection's instances: ~530 characters)."""
    import json

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
            sample = (
                f"Given the {', '.join(k for k, _ in inputs)}, give the {output[0]}.",
                text,
                str(output[1]),
            )
            if len(str(output[1]).strip()) > 0 and sum(map(len, sample)) <= 20 * target_chars:
                found.append(sample)
    if not found:
        raise SystemExit(f"no sample rows under {snapshot}")
    sizes = np.array([sum(map(len, x)) for x in found])
    by_size = np.argsort(sizes, kind="stable")
    means = np.cumsum(sizes[by_size]) / np.arange(1, len(found) + 1)
    count = max(1, int(np.searchsorted(means, target_chars, side="right")))
    return [found[i] for i in np.sort(by_size[:count])]


def repeated(samples: list[Any], n: int) -> list[Any]:
    return [samples[i % len(samples)] for i in range(n)]


class PhaseClock:
    """A :class:`~dynosaur.progress.Progress` that adds the time between advances to the phase
    each advance names (``P0``, ``train 1/3``...): what each kind of pass cost, inside one
    timed run. The first interval also holds the tokenising."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.items: dict[str, int] = {}
        self._last = time.perf_counter()

    def start(self, total: int | None, description: str) -> None:
        self._last = time.perf_counter()

    def advance(self, n: int = 1, **figures: Any) -> None:
        now = time.perf_counter()
        phase = str(figures.get("phase", "?"))
        kind = "train" if phase.startswith("train") else "score"
        self.seconds[kind] = self.seconds.get(kind, 0.0) + now - self._last
        self.items[kind] = self.items.get(kind, 0) + n
        self._last = now

    def finish(self) -> None:
        pass

    def rate(self, kind: str) -> float:
        return self.items.get(kind, 0) / max(self.seconds.get(kind, 0.0), 1e-9)


def bench_lp(
    samples: list[tuple[str, str, str]],
    folder: Path,
    *,
    device: str,
    epochs: int,
    batch_size: int,
    threads: int | None,
    goal_s: float | None,
    **model: Any,
) -> list[tuple[str, str]]:
    """Build a scorer of ``model``'s size (vocabulary from the texts), then run the whole of LP
    (:func:`perplexity_traces`) over ``samples``, timed end to end."""
    import torch

    from dynosaur.select.learning import learning_percentage, one_epoch_learning_percentage
    from dynosaur.select.scorer import TrainingPlan, load_scorer, perplexity_traces, prompt_text
    from dynosaur.select.tiny import make_tiny_scorer

    path = make_tiny_scorer((prompt_text(a, b) + c for a, b, c in samples), folder, **model)
    scorer = load_scorer(str(path), device=device, threads=threads)
    params = sum(p.numel() for p in scorer.model.parameters())
    plan = TrainingPlan(epochs=epochs, batch_size=batch_size, learning_rate=1e-3)
    where = f"{device}, {scorer.threads} thread(s)" if device == "cpu" else device
    label = f"{params / 1e6:.1f}M params, {where}, batch {batch_size}"
    clock = PhaseClock()
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    load = os.getloadavg()[0]
    started = time.perf_counter()
    traces = perplexity_traces(scorer, samples, plan, clock)
    sync()
    wall = time.perf_counter() - started
    lp = learning_percentage(traces) if epochs > 1 else one_epoch_learning_percentage(traces)
    verdict = ""
    if goal_s is not None:
        verdict = f" ({'under' if wall < goal_s else 'OVER'} the {goal_s:.0f} s goal)"
    return [
        (
            f"LP ({label})",
            f"P0, {epochs} epoch(s), a scoring pass after each, over "
            f"{len(samples):,} samples: {wall:.1f} s wall{verdict}; load average "
            f"{load:.2f} at its start",
        ),
        (f"  scoring ({label})", f"{clock.rate('score'):,.1f} samples/s"),
        (f"  training ({label})", f"{clock.rate('train'):,.1f} samples/s"),
        (
            f"  perplexity P0 -> P{epochs}, mean LP",
            f"{traces[:, 0].mean():.1f} -> {traces[:, -1].mean():.1f}, "
            f"{'LP(1)' if epochs > 1 else '(P0 - P1) / P0'} {lp.mean():.3f}",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", help="URL of a store where the demo ran")
    parser.add_argument("--demo-server", help="a Postgres server URL: run the demo there first")
    parser.add_argument("--version", type=int, default=3, help="the version whose pool is used")
    parser.add_argument("--snapshot", type=Path, default=default_snapshot())
    parser.add_argument("--samples", type=int, default=10_000, help="pool, texts repeated")
    parser.add_argument("--batch-size", type=int, default=8, help="training batch (settings: 8)")
    parser.add_argument("--threads", type=int, help="CPU threads (default: the idle cores)")
    parser.add_argument("--gpt2-samples", type=int, default=64, help="0: skip GPT-2-small")
    parser.add_argument("--goal", type=float, default=120.0, help="seconds, the tiny scorer's")
    args = parser.parse_args()

    started = time.perf_counter()
    if args.demo_server:
        args.store = run_demo(args.demo_server)
        print(f"demo ran into {args.store} in {time.perf_counter() - started:.0f} s", flush=True)
    if args.store:
        texts = store_samples(args.store, args.version)
        source = f"the demo's version {args.version} pool ({len(texts):,} instances)"
    else:
        texts = snapshot_samples(args.snapshot)
        source = f"{len(texts):,} real sample rows of {args.snapshot}"
    chars = np.mean([sum(map(len, t)) for t in texts])
    pool = repeated(texts, args.samples)
    print(f"texts: {source}, {chars:.0f} characters on average, repeated to {len(pool):,}")

    import torch

    rows: list[tuple[str, str]] = []
    common = {"batch_size": args.batch_size, "threads": args.threads}
    with tempfile.TemporaryDirectory() as tmp:
        rows += _shown(
            bench_lp(pool, Path(tmp) / "tiny", device="cpu", epochs=3, goal_s=args.goal, **common)
        )
        if args.gpt2_samples:
            rows += _shown(
                bench_lp(
                    pool[: args.gpt2_samples],
                    Path(tmp) / "gpt2",
                    device="cpu",
                    epochs=1,
                    goal_s=None,
                    **common,
                    **GPT2_SMALL,
                )
            )
        if torch.cuda.is_available():
            rows += _shown(
                bench_lp(
                    pool,
                    Path(tmp) / "gpt2-gpu",
                    device="cuda",
                    epochs=3,
                    goal_s=None,
                    **common,
                    **GPT2_SMALL,
                )
            )
        else:
            rows += _shown([("LP on a GPU", "not measured: no CUDA device visible")])
    print(f"torch {torch.__version__}; uptime: {_uptime()}")


def _shown(rows: list[tuple[str, str]]) -> list[tuple[str, str]]:
    for name, value in rows:
        print(f"  {name}: {value}", flush=True)
    return rows


def _uptime() -> str:
    done = subprocess.run(["uptime"], capture_output=True, text=True, check=False)
    return done.stdout.strip()


if __name__ == "__main__":
    main()
