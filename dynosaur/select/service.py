"""One selection orchestration over version N of the store, parameterised by method.

:func:`select` names the request (the method's ``spec``), returns the stored selection untouched
when the same name was asked for with the same inputs, and otherwise computes the members (the
method's ``compute``: pool, embeddings, perplexity traces, pure selection math) and stores them.
``select_coreset``, ``select_learning_percentage`` and ``select_replay`` are :func:`select` with
one method each, keyword for keyword.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from dynosaur.model import StepSummary
from dynosaur.progress import NullProgress, Progress
from dynosaur.select.methods import (
    Coreset,
    LearningPercentage,
    Per,
    Replay,
    Score,
    SelectionMethod,
    SelectionRun,
)
from dynosaur.settings import Settings
from dynosaur.store import selections as store
from dynosaur.store.selections import StoredSelection


@dataclass(frozen=True)
class SelectionResult:
    """A stored selection and the step's summary (counts and figures)."""

    selection: StoredSelection
    summary: StepSummary


def select(
    engine: Engine,
    settings: Settings,
    method: SelectionMethod,
    *,
    version: int,
    name: str | None = None,
    seed: int = 0,
    replace: bool = False,
    progress: Progress | None = None,
) -> SelectionResult:
    """Make the selection ``method`` describes over version ``version`` and store it under
    ``name`` (default: a name made from the inputs), or find it stored already.

    A stored selection of that name made from other inputs is an error unless ``replace``.
    """
    spec = method.spec(settings, version=version, name=name, seed=seed)
    found = store.reusable_selection(engine, spec, replace=replace)
    if found:
        reused = StepSummary(method.step)
        reused.add("reused", None, found.instances)
        reused.figures.update(name=found.name, reused=1)
        return SelectionResult(found, reused)
    started = time.monotonic()
    summary = StepSummary(method.step, figures={"name": spec.name})
    run = SelectionRun(engine, settings, spec, progress or NullProgress(), summary)
    outcome = method.compute(run)
    summary.figures["reused"] = 0
    summary.figures["seconds"] = round(time.monotonic() - started, 3)
    stored = store.save_selection(
        engine,
        spec,
        outcome.members,
        pool_size=outcome.pool_size,
        figures=dict(summary.figures),
        replace=replace,
    )
    return SelectionResult(stored, summary)


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
    refine: bool = False,
    seed: int = 0,
    replace: bool = False,
    progress: Progress | None = None,
) -> SelectionResult:
    """:func:`select` with :class:`~dynosaur.select.methods.Coreset` (fraction None and no
    count: its default share, :data:`~dynosaur.select.methods.CORESET_FRACTION`)."""
    method = Coreset(fraction, count, per, category, clusters, refine)
    return select(
        engine, settings, method, version=version, name=name, seed=seed, replace=replace,
        progress=progress,
    )  # fmt: skip


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
    """:func:`select` with :class:`~dynosaur.select.methods.LearningPercentage` (fraction None
    and no count: its default share, :data:`~dynosaur.select.methods.LEARNING_PERCENTAGE_FRACTION`).
    """
    method = LearningPercentage(
        fraction, count, score, baseline, scorer, epochs, category, clusters
    )
    return select(
        engine, settings, method, version=version, name=name, seed=seed, replace=replace,
        progress=progress,
    )  # fmt: skip


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
    """:func:`select` with :class:`~dynosaur.select.methods.Replay`."""
    return select(
        engine, settings, Replay(tasks, strategy), version=version, name=name, seed=seed,
        replace=replace, progress=progress,
    )  # fmt: skip
