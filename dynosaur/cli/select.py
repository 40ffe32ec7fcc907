"""``dynosaur select``: store a coreset, a learning-percentage subset or a replay set."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

import typer

from dynosaur.cli.common import console, load_settings, reports_errors, store, table
from dynosaur.cli.progress import BarProgress
from dynosaur.errors import UsageError

if TYPE_CHECKING:
    from dynosaur.select import SelectionMethod, SelectionResult

app = typer.Typer(
    help=(
        "Pick the part of a version worth training on, and store it under a name: a 0.5% "
        "coreset, the hardest samples by learning percentage, or a replay set for continual "
        "training. Export it with: dynosaur export --selection NAME.\n\n"
        "Example: dynosaur select coreset --version 3 && dynosaur select list"
    ),
    no_args_is_help=True,
)


class Per(StrEnum):
    pool = "pool"
    category = "category"
    task = "task"


class Score(StrEnum):
    lp = "lp"
    lp_one_epoch = "lp-one-epoch"


class Strategy(StrEnum):
    instruction = "instruction"
    random = "random"
    data = "data"


VERSION = typer.Option(
    ..., "--version", "-V", min=1, help="Select from version N of the collection."
)
NAME = typer.Option(None, "--name", help="Store under this name (default: made from the inputs).")
SEED = typer.Option(0, help="Seed of k-means, shuffling and random picks.")
REPLACE = typer.Option(False, help="Overwrite a selection of this name made from other inputs.")
CATEGORY = typer.Option(None, help="Only instances of datasets with this task category.")
CLUSTERS = typer.Option(None, min=1, help="k of k-means (default DYNOSAUR_SELECTION_CLUSTERS).")
CORESET_CLUSTERS = typer.Option(None, min=1, help="k of k-means (default: one per 10 picks).")


def _report(result: SelectionResult) -> None:
    selection, summary = result.selection, result.summary
    verb = "already stored, unchanged" if selection.reused else "stored"
    console.print(
        f"selection [bold]{selection.name}[/] ({selection.method}, version {selection.version}) "
        f"{verb}: {selection.instances:,} instances",
        soft_wrap=True,
    )
    if summary.counts:
        console.print(table(summary.step, ["status", "reason", "count"], summary.rows()))
    shown = {k: v for k, v in summary.figures.items() if k not in ("name", "reused")}
    if shown:
        console.print(table("figures", ["figure", "value"], shown.items()))


def _select(
    method: SelectionMethod, *, version: int, name: str | None, seed: int, replace: bool
) -> None:
    """Run one selection with a progress bar and print what was stored."""
    from dynosaur.select import select

    settings = load_settings()
    engine = store(settings)
    with BarProgress() as progress:
        result = select(
            engine, settings, method, version=version, name=name, seed=seed, replace=replace,
            progress=progress,
        )  # fmt: skip
    _report(result)


def _parameters(parameters: dict) -> str:
    """The parameters that tell selections apart, short (the full set is in the view)."""
    hidden = ("text", "training", "clusters", "refine")
    return " ".join(f"{k}={v}" for k, v in parameters.items() if v is not None and k not in hidden)


def _budget(fraction: float | None, count: int | None) -> tuple[float | None, int | None]:
    if fraction is not None and count is not None:
        raise UsageError("give --fraction or --count, not both")
    return fraction, count


@app.command()
@reports_errors
def coreset(
    version: int = VERSION,
    fraction: float | None = typer.Option(
        None, min=0, max=1, help="Share of the pool to keep (default 0.005)."
    ),
    count: int | None = typer.Option(None, min=1, help="Number of instances to keep."),
    per: Per = typer.Option(Per.pool, help="Select over the whole pool, per category or per task."),
    category: str | None = CATEGORY,
    clusters: int | None = CORESET_CLUSTERS,
    refine: bool = typer.Option(
        False,
        help="Move each k-center pick to the centre of the cell it covers (lower mean "
        "distance to a pick, higher max distance).",
    ),
    seed: int = SEED,
    name: str | None = NAME,
    replace: bool = REPLACE,
) -> None:
    """The coreset: k-means on instance embeddings, then k-center greedy from the clusters'
    centres (covers: the largest distance to a pick is kept small).

    Embeddings are computed once per instance and kept, so version N+1 embeds only what is new.

    Example: dynosaur select coreset --version 3 --fraction 0.005 --per category --name core3
    """
    from dynosaur.select import Coreset

    fraction, count = _budget(fraction, count)
    method = Coreset(fraction, count, per.value, category, clusters, refine)
    _select(method, version=version, name=name, seed=seed, replace=replace)


@app.command("learning-percentage")
@reports_errors
def learning_percentage(
    version: int = VERSION,
    fraction: float | None = typer.Option(
        None, min=0, max=1, help="Share of the pool to keep (default 0.05)."
    ),
    count: int | None = typer.Option(None, min=1, help="Number of instances to keep."),
    scorer: str | None = typer.Option(
        None, help="Causal LM name or path (default DYNOSAUR_SCORER_MODEL)."
    ),
    score: Score = typer.Option(
        Score.lp, help="lp = (P0-P1)/(P0-Pn); lp-one-epoch = (P0-P1)/P0 (one epoch of training)."
    ),
    epochs: int | None = typer.Option(
        None, min=1, help="Training epochs (default DYNOSAUR_SCORER_EPOCHS, 1 for lp-one-epoch)."
    ),
    baseline: bool = typer.Option(
        False, "--random-baseline", help="Same count per cluster, at random (no scorer)."
    ),
    category: str | None = CATEGORY,
    clusters: int | None = CLUSTERS,
    seed: int = SEED,
    name: str | None = NAME,
    replace: bool = REPLACE,
) -> None:
    """The hardest samples of every k-means cluster by learning percentage (low LP = hard).

    The scorer is trained on the whole pool for n epochs on the GPU when one is visible; its
    perplexity traces are stored, so other sizes of the same pool reuse them.

    Example: dynosaur select learning-percentage --version 3 --fraction 0.05 --scorer ./opt-350m
    """
    from dynosaur.select import LearningPercentage

    fraction, count = _budget(fraction, count)
    method = LearningPercentage(
        fraction, count, "lp" if score is Score.lp else "lp_one_epoch", baseline, scorer, epochs,
        category, clusters,
    )  # fmt: skip
    _select(method, version=version, name=name, seed=seed, replace=replace)


@app.command()
@reports_errors
def replay(
    version: int = VERSION,
    tasks: int = typer.Option(..., "--tasks", "-R", min=0, help="Earlier tasks to replay."),
    strategy: Strategy = typer.Option(
        Strategy.instruction,
        help="instruction = most diverse instructions; random; data = instance embeddings.",
    ),
    seed: int = SEED,
    name: str | None = NAME,
    replace: bool = REPLACE,
) -> None:
    """Batch N's instances plus those of R earlier tasks to replay in continual training.

    Example: dynosaur select replay --version 5 --tasks 50 --name stage5
    """
    from dynosaur.select import Replay

    _select(Replay(tasks, strategy.value), version=version, name=name, seed=seed, replace=replace)


@app.command("list")
@reports_errors
def list_() -> None:
    """List the stored selections, newest first.

    Example: dynosaur select list
    """
    from dynosaur.select import list_selections

    settings = load_settings()
    rows = [
        (
            s.name,
            s.method,
            s.version,
            s.instances,
            _parameters({**s.parameters, "seed": s.seed}),
            s.created_at.strftime("%Y-%m-%d %H:%M"),
        )
        for s in list_selections(store(settings))
    ]
    if not rows:
        console.print("no selections stored yet (try: dynosaur select coreset --version N)")
        return
    columns = ["name", "method", "version", "instances", "parameters", "created"]
    listing = table("selections", columns, rows)
    for column in listing.columns[:2]:
        column.no_wrap = True  # names are what users copy: never cut them
    console.print(listing)


@app.command()
@reports_errors
def drop(name: str = typer.Argument(..., help="Name of the selection to delete.")) -> None:
    """Delete a stored selection (its members go with it; the collection is untouched).

    Example: dynosaur select drop core3
    """
    from dynosaur.select import drop_selection

    settings = load_settings()
    if not drop_selection(store(settings), name):
        raise UsageError(f"there is no selection named {name!r}")
    console.print(f"dropped selection {name}")
