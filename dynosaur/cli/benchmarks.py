"""``dynosaur benchmarks``: index the evaluation datasets kept out of the collection, list them."""

from __future__ import annotations

import typer

from dynosaur.cli.common import console, load_settings, reports_errors, store, table

app = typer.Typer(
    help="Benchmark decontamination: index DYNOSAUR_BENCHMARKS, list what is indexed.",
    no_args_is_help=True,
)


@app.command("index")
@reports_errors
def index_command(
    only: list[str] = typer.Argument(
        None, help="DATASET[:CONFIG[:SPLIT]] to index instead of the setting's list."
    ),
) -> None:
    """Fetch the rows of each listed benchmark whose revision is not indexed yet (Dataset
    Viewer), store their 13-grams, then re-check the published collection against the new ones
    and retract the sources that match.

    Examples:

      dynosaur benchmarks index

      dynosaur benchmarks index gsm8k:main:test
    """
    from dynosaur import decontam

    settings = load_settings()
    wanted = [decontam.BenchmarkSpec.parse(s) for s in only] if only else None
    result = decontam.index(settings, store(settings), wanted)
    for name, n in result.indexed.items():
        console.print(f"indexed {name}: {n} n-grams")
    console.print(
        f"{len(result.indexed)} splits indexed, {len(result.unchanged)} unchanged, "
        f"{len(result.failed)} datasets not reachable"
        + "".join(f"\n  {d}: {why}" for d, why in result.failed.items())
    )
    for dataset_id, bench in result.retracted.items():
        console.print(f"retracted {dataset_id}: an instance matches {bench}")


@app.command("list")
@reports_errors
def list_command() -> None:
    """List the indexed benchmark splits (revision, rows, n-grams, when)."""
    from dynosaur.store import benchmarks

    settings = load_settings()
    rows = [
        (b.name, b.sha[:12], b.n_rows, b.n_ngrams, b.indexed_at.date().isoformat())
        for b in benchmarks.benchmarks(store(settings))
    ]
    console.print(
        table("benchmarks", ["benchmark", "revision", "rows", "n-grams", "indexed"], rows)
    )
