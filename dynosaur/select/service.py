"""The three selections over version N of the store, each stored under a name.

``select_coreset``, ``select_learning_percentage`` and ``select_replay`` read the pool, reuse or
compute embeddings (and perplexity traces), run the pure selection math, and store the result.
Asking again for a stored name with the same inputs returns the stored selection untouched.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dynosaur.errors import UsageError
from dynosaur.model import StepSummary
from dynosaur.progress import NullProgress, Progress
from dynosaur.select import pool as pools
from dynosaur.select.budget import resolve_budget
from dynosaur.select.coreset import coreset, group_codes
from dynosaur.select.embed import (
    Embedder,
    instance_text,
    load_embedder,
    model_key,
    task_text,
)
from dynosaur.select.geometry import kmeans_labels
from dynosaur.select.learning import (
    hardest_per_cluster,
    learning_percentage,
    one_epoch_learning_percentage,
    random_per_cluster,
)
from dynosaur.select.pool import InstancePool, SelectionError
from dynosaur.select.replay import STRATEGIES, diverse_replay, mean_by_group, random_replay
from dynosaur.select.scorer import TrainingPlan, load_scorer, perplexity_traces
from dynosaur.select.stored import (
    Members,
    SelectionSpec,
    StoredSelection,
    existing,
    save_selection,
)
from dynosaur.settings import Settings

Per = Literal["pool", "category", "task"]
Score = Literal["lp", "lp_one_epoch"]
EMBEDDING_TEXT = "instance: instruction-input-response v1; task: instruction v1"


@dataclass(frozen=True)
class SelectionResult:
    """A stored selection and the step's summary (counts and figures)."""

    selection: StoredSelection
    summary: StepSummary


class _LazyEmbedder:
    """Loads the embedding model only when something is missing from the store."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.key = model_key(settings.embedding_model)
        self._model: Embedder | None = None

    def encode(self, texts: Sequence[str], progress: Progress) -> np.ndarray:
        if self._model is None:
            self._model = load_embedder(
                self.settings.embedding_model,
                device=self.settings.selection_device,
                batch_size=self.settings.embedding_batch_size,
            )
        return self._model.encode(texts, progress)


def instance_vectors(
    engine: Engine, settings: Settings, ids: np.ndarray, progress: Progress | None = None
) -> tuple[np.ndarray, int]:
    """Embeddings of instances (stored ones reused); returns (matrix, newly embedded)."""
    embedder = _LazyEmbedder(settings)

    def texts(part: np.ndarray) -> list[str]:
        return [instance_text(*f) for f in pools.instance_fields(engine, part)]

    return pools.ensure_vectors(
        engine, "instance", ids, model=embedder.key, encode=embedder.encode, texts=texts,
        progress=progress,
    )  # fmt: skip


def task_vectors(
    engine: Engine,
    settings: Settings,
    ids: np.ndarray,
    instructions: Sequence[str],
    progress: Progress | None = None,
) -> tuple[np.ndarray, int]:
    """Embeddings of task instructions (stored ones reused); returns (matrix, newly embedded)."""
    embedder = _LazyEmbedder(settings)
    by_id = {int(i): text for i, text in zip(ids, instructions, strict=True)}

    def texts(part: np.ndarray) -> list[str]:
        return [task_text(by_id[int(i)]) for i in part]

    return pools.ensure_vectors(
        engine, "task", ids, model=embedder.key, encode=embedder.encode, texts=texts,
        progress=progress,
    )  # fmt: skip


def _budget_label(fraction: float | None, count: int | None) -> str:
    return f"n{count}" if count is not None else f"{fraction:g}"


def _nonempty_pool(engine: Engine, version: int, category: str | None) -> InstancePool:
    pool = pools.instance_pool(engine, version, category=category)
    if not len(pool):
        where = f" in task category {category!r}" if category else ""
        raise SelectionError(f"version {version} has no instances{where}")
    return pool


def _finish(
    engine: Engine,
    spec: SelectionSpec,
    members: Members,
    summary: StepSummary,
    *,
    pool_size: int,
    replace: bool,
    started: float,
) -> SelectionResult:
    summary.figures["seconds"] = round(time.monotonic() - started, 3)
    stored = save_selection(
        engine, spec, members, pool_size=pool_size, figures=dict(summary.figures), replace=replace
    )
    return SelectionResult(stored, summary)


def _reused(found: StoredSelection, step: str) -> SelectionResult:
    summary = StepSummary(step)
    summary.add("reused", None, found.instances)
    summary.figures.update(name=found.name, reused=1)
    return SelectionResult(found, summary)


def select_coreset(
    engine: Engine,
    settings: Settings,
    *,
    version: int,
    name: str | None = None,
    fraction: float | None = None,
    count: int | None = None,
    per: Per = "pool",
    category: str | None = None,
    clusters: int | None = None,
    refine: bool = True,
    seed: int = 0,
    replace: bool = False,
    progress: Progress | None = None,
) -> SelectionResult:
    """The 0.5% coreset: k-means then k-center greedy per cluster, per group of the pool
    (``refine``: each pick moved to the centre of the cell it covers)."""
    if fraction is None and count is None:
        fraction = 0.005
    resolve_budget(1, fraction=fraction, count=count)  # validates before any work
    if per not in ("pool", "category", "task"):
        raise UsageError(f"--per must be pool, category or task, got {per!r}")
    parameters = {
        "fraction": fraction,
        "count": count,
        "per": per,
        "category": category,
        "clusters": clusters,  # None: one per PICKS_PER_CLUSTER picks
        "refine": refine,
        "text": EMBEDDING_TEXT,
    }
    label = "-".join(
        ["coreset", f"v{version}", _budget_label(fraction, count), per]
        + ([category] if category else [])
        + [f"s{seed}"]
    )
    spec = SelectionSpec(
        name=name or _safe_name(label),
        method="coreset",
        version=version,
        parameters=parameters,
        models={"embedding": model_key(settings.embedding_model)},
        seed=seed,
    )
    found = existing(engine, spec, replace=replace)
    if found:
        return _reused(found, "select coreset")
    started = time.monotonic()
    progress = progress or NullProgress()
    pool = _nonempty_pool(engine, version, category)
    vectors, embedded = instance_vectors(engine, settings, pool.instance_id, progress)
    budget = resolve_budget(len(pool), fraction=fraction, count=count)
    groups = {
        "pool": None,
        "category": group_codes(pool.category, len(pool)),
        "task": group_codes(pool.task_id, len(pool)),
    }[per]
    progress.start(1, "k-means and k-center greedy")
    picks = coreset(vectors, budget, clusters=clusters, seed=seed, groups=groups, refine=refine)
    progress.advance(1)
    progress.finish()
    summary = StepSummary("select coreset")
    summary.add("selected", None, len(picks))
    summary.add("not_selected", None, len(pool) - len(picks))
    summary.figures.update(
        name=spec.name, pool=len(pool), budget=budget, embedded=embedded, reused=0
    )
    members = Members.ranked(
        "instance", pool.instance_id[picks.indices], picks.scores, role="selected"
    )
    return _finish(
        engine, spec, members, summary, pool_size=len(pool), replace=replace, started=started
    )


def select_learning_percentage(
    engine: Engine,
    settings: Settings,
    *,
    version: int,
    name: str | None = None,
    fraction: float | None = None,
    count: int | None = None,
    score: Score = "lp",
    baseline: bool = False,
    scorer: str | None = None,
    epochs: int | None = None,
    category: str | None = None,
    clusters: int | None = None,
    seed: int = 0,
    replace: bool = False,
    progress: Progress | None = None,
) -> SelectionResult:
    """The hardest share of every k-means cluster by learning percentage (or, as the baseline,
    the same number per cluster at random)."""
    if fraction is None and count is None:
        fraction = 0.05
    resolve_budget(1, fraction=fraction, count=count)
    if score not in ("lp", "lp_one_epoch"):
        raise UsageError(f"--score must be lp or lp_one_epoch, got {score!r}")
    k = clusters or settings.selection_clusters
    parameters: dict[str, Any] = {
        "fraction": fraction,
        "count": count,
        "category": category,
        "clusters": k,
        "text": EMBEDDING_TEXT,
    }
    models = {"embedding": model_key(settings.embedding_model)}
    plan: TrainingPlan | None = None
    if not baseline:
        scorer = scorer or settings.scorer_model
        if not scorer:
            raise UsageError(
                "learning percentage needs a scorer model: pass --scorer NAME_OR_PATH or set "
                "DYNOSAUR_SCORER_MODEL (a small causal LM, e.g. a 350M one)"
            )
        default_epochs = 1 if score == "lp_one_epoch" else settings.scorer_epochs
        plan = TrainingPlan(
            epochs=epochs or default_epochs,
            batch_size=settings.scorer_batch_size,
            learning_rate=settings.scorer_learning_rate,
            max_tokens=settings.scorer_max_tokens,
            seed=seed,
        )
        if score == "lp" and plan.epochs < 2:
            raise UsageError("LP(1) = (P0 - P1) / (P0 - Pn) needs at least 2 epochs")
        parameters.update(score=score, training=plan.to_json())
        models["scorer"] = scorer
    method = "random_per_cluster" if baseline else "learning_percentage"
    label = "-".join(
        ["random-per-cluster" if baseline else score.replace("_", "-"), f"v{version}"]
        + [_budget_label(fraction, count)]
        + ([category] if category else [])
        + [f"s{seed}"]
    )
    spec = SelectionSpec(
        name=name or _safe_name(label),
        method=method,
        version=version,
        parameters=parameters,
        models=models,
        seed=seed,
    )
    found = existing(engine, spec, replace=replace)
    if found:
        return _reused(found, "select learning-percentage")
    started = time.monotonic()
    progress = progress or NullProgress()
    pool = _nonempty_pool(engine, version, category)
    budget = resolve_budget(len(pool), fraction=fraction, count=count)
    vectors, embedded = instance_vectors(engine, settings, pool.instance_id, progress)
    progress.start(1, "k-means")
    labels = kmeans_labels(vectors, min(k, budget), seed=seed)
    progress.advance(1)
    progress.finish()
    summary = StepSummary("select learning-percentage")
    summary.figures.update(name=spec.name, pool=len(pool), budget=budget, embedded=embedded)
    if plan is None:
        picks = random_per_cluster(labels, budget, seed=seed)
    else:
        assert scorer is not None
        traces, reused_run = scoring_traces(engine, settings, scorer, pool, plan, progress=progress)
        scores = (
            learning_percentage(traces) if score == "lp" else one_epoch_learning_percentage(traces)
        )
        picks = hardest_per_cluster(scores, labels, budget)
        summary.figures.update(scoring_reused=int(reused_run), mean_p0=float(traces[:, 0].mean()))
        summary.figures[f"mean_p{plan.epochs}"] = float(traces[:, plan.epochs].mean())
    summary.add("selected", None, len(picks))
    summary.add("not_selected", None, len(pool) - len(picks))
    summary.figures.update(clusters=len(np.unique(labels)), reused=0)
    members = Members.ranked(
        "instance", pool.instance_id[picks.indices], picks.scores, role="selected"
    )
    return _finish(
        engine, spec, members, summary, pool_size=len(pool), replace=replace, started=started
    )


def _run_key(scorer: str, pool: InstancePool, plan: TrainingPlan) -> str:
    """Key of a scoring run without its epoch count (a longer run serves shorter requests)."""
    ids = hashlib.sha256(np.ascontiguousarray(pool.instance_id, dtype="<i8").tobytes())
    params = {k: v for k, v in plan.to_json().items() if k != "epochs"}
    blob = json.dumps([scorer, ids.hexdigest(), params], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def scoring_traces(
    engine: Engine,
    settings: Settings,
    scorer: str,
    pool: InstancePool,
    plan: TrainingPlan,
    *,
    progress: Progress | None = None,
) -> tuple[np.ndarray, bool]:
    """Perplexity traces [pool, P0..Pn] of ``pool``: from a stored run with at least n epochs,
    or computed (train the scorer) and stored. Returns (traces, reused)."""
    base = _run_key(scorer, pool, plan)
    stored = _load_traces(engine, base, pool, plan.epochs)
    if stored is not None:
        return stored, True
    started = time.monotonic()
    samples = pools.instance_fields(engine, pool.instance_id)
    loaded = load_scorer(scorer, device=settings.selection_device)
    traces = perplexity_traces(loaded, samples, plan, progress)
    with engine.begin() as conn:
        run_id = conn.execute(
            sa.text(
                "INSERT INTO scoring_run (key, scorer, version, parameters, device, instances, "
                "seconds) VALUES (:k, :s, :v, :p, :d, :n, :t) "
                "ON CONFLICT (key) DO NOTHING RETURNING id"
            ),
            {
                "k": f"{base}/e{plan.epochs}",
                "s": scorer,
                "v": pool.version,
                "p": json.dumps(plan.to_json()),
                "d": loaded.device,
                "n": len(pool),
                "t": time.monotonic() - started,
            },
        ).scalar()
        if run_id is not None:
            conn.execute(
                sa.text(
                    "INSERT INTO perplexity_trace (scoring_run_id, instance_id, perplexities) "
                    "VALUES (:r, :i, :p)"
                ),
                [
                    {"r": run_id, "i": int(i), "p": [float(x) for x in row]}
                    for i, row in zip(pool.instance_id, traces, strict=True)
                ],
            )
    return traces, False


def _load_traces(engine: Engine, base: str, pool: InstancePool, epochs: int) -> np.ndarray | None:
    with engine.begin() as conn:
        runs = conn.execute(
            sa.text(
                "SELECT id, (parameters->>'epochs')::int AS epochs, instances FROM scoring_run "
                "WHERE key LIKE :k ORDER BY (parameters->>'epochs')::int"
            ),
            {"k": base + "/e%"},
        ).all()
        for run_id, run_epochs, instances in runs:
            if run_epochs < epochs:
                continue
            rows = conn.execute(
                sa.text(
                    "SELECT instance_id, perplexities FROM perplexity_trace "
                    "WHERE scoring_run_id = :r"
                ),
                {"r": run_id},
            ).all()
            if len(rows) != instances or instances != len(pool):
                # Incomplete (its instances were removed): forget it and score again.
                conn.execute(sa.text("DELETE FROM scoring_run WHERE id = :r"), {"r": run_id})
                continue
            by_id = {int(r[0]): r[1] for r in rows}
            return np.array(
                [by_id[int(i)][: epochs + 1] for i in pool.instance_id], dtype=np.float64
            )
    return None


def select_replay(
    engine: Engine,
    settings: Settings,
    *,
    version: int,
    tasks: int,
    strategy: str = "instruction",
    name: str | None = None,
    seed: int = 0,
    replace: bool = False,
    progress: Progress | None = None,
) -> SelectionResult:
    """Batch N's tasks plus ``tasks`` earlier tasks to replay, picked by ``strategy``:
    ``instruction`` (most diverse instructions), ``random`` or ``data`` (instance embeddings)."""
    if strategy not in STRATEGIES:
        raise UsageError(f"--strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    if tasks < 0:
        raise UsageError(f"the number of replay tasks must be >= 0, got {tasks}")
    models = {} if strategy == "random" else {"embedding": model_key(settings.embedding_model)}
    spec = SelectionSpec(
        name=name or f"replay-v{version}-{strategy}-{tasks}-s{seed}",
        method=f"replay_{strategy}",  # type: ignore[arg-type]
        version=version,
        parameters={"tasks": tasks, "strategy": strategy, "text": EMBEDDING_TEXT},
        models=models,
        seed=seed,
    )
    found = existing(engine, spec, replace=replace)
    if found:
        return _reused(found, "select replay")
    started = time.monotonic()
    progress = progress or NullProgress()
    pool = pools.task_pool(engine, version)
    is_current = pool.version == version
    current, earlier = np.flatnonzero(is_current), np.flatnonzero(~is_current)
    embedded = 0
    if strategy == "random" or len(earlier) == 0:
        picks = random_replay(len(earlier), tasks, seed=seed)
    elif strategy == "instruction":
        vectors, embedded = task_vectors(engine, settings, pool.task_id, pool.instruction, progress)
        picks = diverse_replay(vectors[earlier], vectors[current], tasks)
    else:
        instances = pools.instance_pool(engine, version)
        vectors, embedded = instance_vectors(engine, settings, instances.instance_id, progress)
        by_task = mean_by_group(vectors, instances.task_id, pool.task_id)
        picks = diverse_replay(by_task[earlier], by_task[current], tasks)
    replay_ids = pool.task_id[earlier[picks.indices]]
    members = Members(
        "task",
        pool.task_id[current],
        ["current"] * len(current),
        [None] * len(current),
        np.full(len(current), np.nan),
    ) + Members.ranked("task", replay_ids, picks.scores, role="replay")
    summary = StepSummary("select replay")
    summary.add("current", None, len(current))
    summary.add("replay", None, len(replay_ids))
    summary.add("not_replayed", None, len(earlier) - len(replay_ids))
    summary.figures.update(name=spec.name, earlier_tasks=len(earlier), embedded=embedded, reused=0)
    return _finish(
        engine, spec, members, summary, pool_size=len(pool), replace=replace, started=started
    )


def _safe_name(label: str) -> str:
    """A default selection name: the label with characters outside [A-Za-z0-9._-] replaced."""
    cleaned = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "._-") else "_" for ch in label)
    return cleaned[:128]
