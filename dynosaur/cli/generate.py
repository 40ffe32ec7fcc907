"""``dynosaur generate``: propose tasks for the collected configs with the LLM."""

from __future__ import annotations

from datetime import UTC, datetime

import typer

from dynosaur.cli.common import (
    console,
    load_settings,
    parse_int_ids,
    print_summary,
    reports_errors,
    store,
)
from dynosaur.cli.progress import BarProgress


def register(app: typer.Typer) -> None:
    """Add ``generate`` to the top-level ``dynosaur`` command."""
    app.command(name="generate")(reports_errors(generate_command))


def generate_command(
    limit: int | None = typer.Option(None, "--limit", min=1, help="At most N configs."),
    budget: float | None = typer.Option(
        None,
        "--budget",
        help="Spend cap in USD for this run (default DYNOSAUR_BUDGET_USD; negative: no cap).",
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Estimate tokens and cost; send nothing, write nothing."
    ),
    model: str | None = typer.Option(
        None, "--model", help="LLM model (default DYNOSAUR_LLM_MODEL)."
    ),
    run_key: str | None = typer.Option(
        None, "--run-key", help="Run identity the budget is counted against (default: new)."
    ),
    ids: str | None = typer.Option(None, "--ids", help="Only these config ids (comma-separated)."),
) -> None:
    """Propose up to N tasks per collected config (the LLM step), through the call ledger.

    Configs 'collected' or 'deferred' are sent, oldest first; an answer already in the ledger is
    reused and never paid again. When the budget is reached no new call starts: the rest are
    'deferred' (reason budget_exhausted) to a later run.

    Example: dynosaur generate --limit 100 --budget 0.50
    """
    from dynosaur.store import generations

    settings = load_settings(llm_model=model)
    engine = store(settings)
    given = parse_int_ids(ids)
    if given is not None:
        config_ids = given[:limit] if limit else given
    else:
        config_ids = generations.queue(engine, limit=limit)
    key = run_key or "manual:generate:" + datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if not config_ids:  # answered before the LLM client and the step are imported
        console.print("no config is waiting for task generation")
        return
    from dynosaur.generate import generate

    console.print(
        f"{'estimating' if dry_run else 'generating'} tasks for {len(config_ids)} config(s) "
        f"with {settings.llm_model} (run {key})"
    )
    if dry_run:
        summary = generate(
            settings, engine, config_ids, run_key=key, budget_usd=budget, dry_run=True
        )
    else:
        with BarProgress() as progress:
            summary = generate(
                settings, engine, config_ids, run_key=key, budget_usd=budget, progress=progress
            )
    print_summary(summary, "generate: configs")
