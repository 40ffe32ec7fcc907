"""The selection methods behind one protocol: the 0.5% coreset, learning percentage, replay sets.

A method is a small frozen dataclass of its own parameters with two jobs: ``spec`` names the
request (method, version, parameters, models, seed: what makes it reproducible, validated before
any work) and ``compute`` reads the pool, runs the pure selection math and returns the members.
:func:`dynosaur.select.service.select` runs every method the same way. A new method is a class
here, an entry in :data:`METHODS`, and its name in the ``selection.method`` check of the schema.

Each method owns its defaults: ``fraction=None`` (with no ``count``) means the method's share,
:data:`CORESET_FRACTION` or :data:`LEARNING_PERCENTAGE_FRACTION`; the CLI and the DAG pass None.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol

import numpy as np
from sqlalchemy.engine import Engine

from dynosaur.errors import SelectionError, UsageError
from dynosaur.model import StepSummary
from dynosaur.progress import Progress
from dynosaur.select.budget import resolve_budget
from dynosaur.select.coreset import coreset, group_codes
from dynosaur.select.embed import model_key
from dynosaur.select.geometry import kmeans_labels
from dynosaur.select.learning import (
    hardest_per_cluster,
    learning_percentage,
    one_epoch_learning_percentage,
    random_per_cluster,
)
from dynosaur.select.replay import STRATEGIES, diverse_replay, mean_by_group, random_replay
from dynosaur.select.scorer import TrainingPlan, load_scorer, perplexity_traces
from dynosaur.select.vectors import instance_vectors, task_vectors
from dynosaur.settings import Settings
from dynosaur.store import selections as store
from dynosaur.store.selections import InstancePool, Members, MethodName, SelectionSpec

Per = Literal["pool", "category", "task"]
Score = Literal["lp", "lp_one_epoch"]
EMBEDDING_TEXT = "instance: instruction-input-response v1; task: instruction v1"
# The default budgets: Chen et al.'s 0.5% coreset; 5%, one of Mekala et al.'s subset sizes.
CORESET_FRACTION = 0.005
LEARNING_PERCENTAGE_FRACTION = 0.05


@dataclass(frozen=True)
class SelectionRun:
    """What a method's ``compute`` works with: the store, settings, the request, where to report
    progress, and the summary to fill (counts and figures)."""

    engine: Engine
    settings: Settings
    spec: SelectionSpec
    progress: Progress
    summary: StepSummary


@dataclass(frozen=True)
class Outcome:
    """A method's members and the size of the pool they were picked from."""

    members: Members
    pool_size: int


class SelectionMethod(Protocol):
    """One kind of selection (see the module docstring)."""

    step: ClassVar[str]  # the name of its summary ("select coreset")

    def spec(
        self, settings: Settings, *, version: int, name: str | None, seed: int
    ) -> SelectionSpec:
        """The stored identity of this request; raises UsageError on invalid parameters."""
        ...

    def compute(self, run: SelectionRun) -> Outcome:
        """Pick the members of ``run.spec`` and count them in ``run.summary``."""
        ...


def _budget(
    fraction: float | None, count: int | None, default: float
) -> tuple[float | None, int | None]:
    """The budget asked for, or the method's default share; validated before any work."""
    if fraction is None and count is None:
        fraction = default
    resolve_budget(1, fraction=fraction, count=count)
    return fraction, count


def _budget_label(fraction: float | None, count: int | None) -> str:
    return f"n{count}" if count is not None else f"{fraction:g}"


def default_name(label: str) -> str:
    """A default selection name: the label with characters outside [A-Za-z0-9._-] replaced."""
    cleaned = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "._-") else "_" for ch in label)
    return cleaned[:128]


def _nonempty_pool(engine: Engine, version: int, category: str | None) -> InstancePool:
    pool = store.instance_pool(engine, version, category=category)
    if not len(pool):
        where = f" in task category {category!r}" if category else ""
        raise SelectionError(f"version {version} has no instances{where}")
    return pool


def _selected(
    run: SelectionRun, pool: InstancePool, indices: np.ndarray, scores: np.ndarray
) -> Outcome:
    run.summary.add("selected", None, len(indices))
    run.summary.add("not_selected", None, len(pool) - len(indices))
    members = Members.ranked("instance", pool.instance_id[indices], scores, role="selected")
    return Outcome(members, len(pool))


@dataclass(frozen=True)
class Coreset:
    """The 0.5% coreset: k-means, then k-center greedy from the clusters' centres, per group of
    the pool (``refine``: each pick moved to the centre of the cell it covers, which trades the
    max distance for the mean distance)."""

    fraction: float | None = None
    count: int | None = None
    per: Per = "pool"
    category: str | None = None
    clusters: int | None = None  # None: one per PICKS_PER_CLUSTER picks
    refine: bool = False

    step: ClassVar[str] = "select coreset"

    def spec(
        self, settings: Settings, *, version: int, name: str | None, seed: int
    ) -> SelectionSpec:
        fraction, count = _budget(self.fraction, self.count, CORESET_FRACTION)
        if self.per not in ("pool", "category", "task"):
            raise UsageError(f"--per must be pool, category or task, got {self.per!r}")
        parameters = {
            "fraction": fraction,
            "count": count,
            "per": self.per,
            "category": self.category,
            "clusters": self.clusters,
            "refine": self.refine,
            "text": EMBEDDING_TEXT,
        }
        label = "-".join(
            ["coreset", f"v{version}", _budget_label(fraction, count), self.per]
            + ([self.category] if self.category else [])
            + [f"s{seed}"]
        )
        return SelectionSpec(
            name=name or default_name(label),
            method="coreset",
            version=version,
            parameters=parameters,
            models={"embedding": model_key(settings.embedding_model)},
            seed=seed,
        )

    def compute(self, run: SelectionRun) -> Outcome:
        fraction, count = _budget(self.fraction, self.count, CORESET_FRACTION)
        engine, progress = run.engine, run.progress
        pool = _nonempty_pool(engine, run.spec.version, self.category)
        vectors, embedded = instance_vectors(engine, run.settings, pool.instance_id, progress)
        budget = resolve_budget(len(pool), fraction=fraction, count=count)
        groups = {
            "pool": None,
            "category": group_codes(pool.category, len(pool)),
            "task": group_codes(pool.task_id, len(pool)),
        }[self.per]
        progress.start(1, "k-means and k-center greedy")
        picks = coreset(
            vectors,
            budget,
            clusters=self.clusters,
            seed=run.spec.seed,
            groups=groups,
            refine=self.refine,
        )
        progress.advance(1)
        progress.finish()
        run.summary.figures.update(pool=len(pool), budget=budget, embedded=embedded)
        return _selected(run, pool, picks.indices, picks.scores)


@dataclass(frozen=True)
class LearningPercentage:
    """The hardest share of every k-means cluster by learning percentage (or, as the baseline,
    the same number per cluster at random)."""

    fraction: float | None = None
    count: int | None = None
    score: Score = "lp"
    baseline: bool = False
    scorer: str | None = None  # None: DYNOSAUR_SCORER_MODEL
    epochs: int | None = None  # None: DYNOSAUR_SCORER_EPOCHS, 1 for lp_one_epoch
    category: str | None = None
    clusters: int | None = None  # None: DYNOSAUR_SELECTION_CLUSTERS

    step: ClassVar[str] = "select learning-percentage"

    def _scoring(self, settings: Settings, seed: int) -> tuple[str, TrainingPlan] | None:
        """The scorer and how it is trained; None for the random baseline."""
        if self.baseline:
            return None
        scorer = self.scorer or settings.scorer_model
        if not scorer:
            raise UsageError(
                "learning percentage needs a scorer model: pass --scorer NAME_OR_PATH or set "
                "DYNOSAUR_SCORER_MODEL (a small causal LM, e.g. a 350M one)"
            )
        default_epochs = 1 if self.score == "lp_one_epoch" else settings.scorer_epochs
        plan = TrainingPlan(
            epochs=self.epochs or default_epochs,
            batch_size=settings.scorer_batch_size,
            learning_rate=settings.scorer_learning_rate,
            max_tokens=settings.scorer_max_tokens,
            seed=seed,
        )
        if self.score == "lp" and plan.epochs < 2:
            raise UsageError("LP(1) = (P0 - P1) / (P0 - Pn) needs at least 2 epochs")
        return scorer, plan

    def spec(
        self, settings: Settings, *, version: int, name: str | None, seed: int
    ) -> SelectionSpec:
        fraction, count = _budget(self.fraction, self.count, LEARNING_PERCENTAGE_FRACTION)
        if self.score not in ("lp", "lp_one_epoch"):
            raise UsageError(f"--score must be lp or lp_one_epoch, got {self.score!r}")
        parameters: dict[str, Any] = {
            "fraction": fraction,
            "count": count,
            "category": self.category,
            "clusters": self.clusters or settings.selection_clusters,
            "text": EMBEDDING_TEXT,
        }
        models = {"embedding": model_key(settings.embedding_model)}
        scoring = self._scoring(settings, seed)
        if scoring is not None:
            scorer, plan = scoring
            parameters.update(score=self.score, training=plan.to_json())
            models["scorer"] = scorer
        label = "-".join(
            ["random-per-cluster" if self.baseline else self.score.replace("_", "-"), f"v{version}"]
            + [_budget_label(fraction, count)]
            + ([self.category] if self.category else [])
            + [f"s{seed}"]
        )
        return SelectionSpec(
            name=name or default_name(label),
            method="random_per_cluster" if self.baseline else "learning_percentage",
            version=version,
            parameters=parameters,
            models=models,
            seed=seed,
        )

    def compute(self, run: SelectionRun) -> Outcome:
        fraction, count = _budget(self.fraction, self.count, LEARNING_PERCENTAGE_FRACTION)
        engine, settings, progress, summary = run.engine, run.settings, run.progress, run.summary
        seed = run.spec.seed
        pool = _nonempty_pool(engine, run.spec.version, self.category)
        budget = resolve_budget(len(pool), fraction=fraction, count=count)
        vectors, embedded = instance_vectors(engine, settings, pool.instance_id, progress)
        progress.start(1, "k-means")
        k = self.clusters or settings.selection_clusters
        labels = kmeans_labels(vectors, min(k, budget), seed=seed)
        progress.advance(1)
        progress.finish()
        summary.figures.update(pool=len(pool), budget=budget, embedded=embedded)
        scoring = self._scoring(settings, seed)
        if scoring is None:
            picks = random_per_cluster(labels, budget, seed=seed)
        else:
            scorer, plan = scoring
            traces, reused_run = scoring_traces(engine, settings, scorer, pool, plan, progress)
            scores = (
                learning_percentage(traces)
                if self.score == "lp"
                else one_epoch_learning_percentage(traces)
            )
            picks = hardest_per_cluster(scores, labels, budget)
            summary.figures.update(
                scoring_reused=int(reused_run), mean_p0=float(traces[:, 0].mean())
            )
            summary.figures[f"mean_p{plan.epochs}"] = float(traces[:, plan.epochs].mean())
        outcome = _selected(run, pool, picks.indices, picks.scores)
        summary.figures.update(clusters=len(np.unique(labels)))
        return outcome


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
    progress: Progress | None = None,
) -> tuple[np.ndarray, bool]:
    """Perplexity traces [pool, P0..Pn] of ``pool``: from a stored run with at least n epochs,
    or computed (train the scorer) and stored. Returns (traces, reused)."""
    key = _run_key(scorer, pool, plan)
    stored = store.load_traces(engine, key, pool.instance_id, plan.epochs)
    if stored is not None:
        return stored, True
    started = time.monotonic()
    samples = store.instance_fields(engine, pool.instance_id)
    loaded = load_scorer(scorer, device=settings.selection_device)
    traces = perplexity_traces(loaded, samples, plan, progress)
    store.save_traces(
        engine,
        key,
        scorer=scorer,
        version=pool.version,
        parameters=plan.to_json(),
        device=loaded.device,
        instance_ids=pool.instance_id,
        traces=traces,
        seconds=time.monotonic() - started,
    )
    return traces, False


_REPLAY_METHODS: dict[str, MethodName] = {
    "instruction": "replay_instruction",
    "random": "replay_random",
    "data": "replay_data",
}


@dataclass(frozen=True)
class Replay:
    """Batch N's tasks plus ``tasks`` earlier tasks to replay, picked by ``strategy``:
    ``instruction`` (most diverse instructions), ``random`` or ``data`` (instance embeddings)."""

    tasks: int
    strategy: str = "instruction"

    step: ClassVar[str] = "select replay"

    def spec(
        self, settings: Settings, *, version: int, name: str | None, seed: int
    ) -> SelectionSpec:
        if self.strategy not in STRATEGIES:
            raise UsageError(
                f"--strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}"
            )
        if self.tasks < 0:
            raise UsageError(f"the number of replay tasks must be >= 0, got {self.tasks}")
        random = self.strategy == "random"
        return SelectionSpec(
            name=name or f"replay-v{version}-{self.strategy}-{self.tasks}-s{seed}",
            method=_REPLAY_METHODS[self.strategy],
            version=version,
            parameters={"tasks": self.tasks, "strategy": self.strategy, "text": EMBEDDING_TEXT},
            models={} if random else {"embedding": model_key(settings.embedding_model)},
            seed=seed,
        )

    def compute(self, run: SelectionRun) -> Outcome:
        engine, settings, progress = run.engine, run.settings, run.progress
        version, seed = run.spec.version, run.spec.seed
        pool = store.task_pool(engine, version)
        is_current = pool.version == version
        current, earlier = np.flatnonzero(is_current), np.flatnonzero(~is_current)
        embedded = 0
        if self.strategy == "random" or len(earlier) == 0:
            picks = random_replay(len(earlier), self.tasks, seed=seed)
        elif self.strategy == "instruction":
            vectors, embedded = task_vectors(
                engine, settings, pool.task_id, pool.instruction, progress
            )
            picks = diverse_replay(vectors[earlier], vectors[current], self.tasks)
        else:
            instances = store.instance_pool(engine, version)
            vectors, embedded = instance_vectors(engine, settings, instances.instance_id, progress)
            by_task = mean_by_group(vectors, instances.task_id, pool.task_id)
            picks = diverse_replay(by_task[earlier], by_task[current], self.tasks)
        replay_ids = pool.task_id[earlier[picks.indices]]
        members = Members.unranked("task", pool.task_id[current], role="current") + Members.ranked(
            "task", replay_ids, picks.scores, role="replay"
        )
        run.summary.add("current", None, len(current))
        run.summary.add("replay", None, len(replay_ids))
        run.summary.add("not_replayed", None, len(earlier) - len(replay_ids))
        run.summary.figures.update(earlier_tasks=len(earlier), embedded=embedded)
        return Outcome(members, len(pool))


METHODS: dict[str, type[Coreset] | type[LearningPercentage] | type[Replay]] = {
    "coreset": Coreset,
    "learning_percentage": LearningPercentage,
    "replay": Replay,
}


def method_for(name: str, **parameters: Any) -> SelectionMethod:
    """The method called ``name`` (coreset, learning_percentage or replay) with ``parameters``;
    a parameter given as None takes the method's default (e.g. a DAG's empty trigger field)."""
    if name not in METHODS:
        raise UsageError(f"unknown selection method {name!r}; use {', '.join(sorted(METHODS))}")
    given = {key: value for key, value in parameters.items() if value is not None}
    try:
        return METHODS[name](**given)
    except TypeError as exc:  # an unknown or missing parameter
        raise UsageError(f"selection method {name}: {exc}") from exc
