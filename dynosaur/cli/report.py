"""``dynosaur report``: the growth report of a version as one static HTML page."""

from __future__ import annotations

from pathlib import Path

import typer

from dynosaur.cli.common import console, load_settings, reports_errors, store


def register(app: typer.Typer) -> None:
    """Add ``report`` to the top-level ``dynosaur`` command."""
    app.command(name="report")(reports_errors(report_command))


def report_command(
    version: int | None = typer.Option(
        None, "--version", min=1, help="Version to report on (default: the latest published)."
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        help="File or folder to write (default: <export dir>/v<N>/report.html, beside the "
        "export DAG's files).",
    ),
) -> None:
    """Write the growth report of a version: one HTML page, no server needed.

    Growth over versions (instances, tasks, datasets), skips and rejections by reason per
    batch, cost per batch and per valid instance, task categories, licenses, languages and
    sample instances of the version's batch, all read from the store's views. The export DAG
    writes the same page for every version it exports.

    Example: dynosaur report --version 3 --out report.html
    """
    from dynosaur.report import build_report, save_report

    settings = load_settings()
    engine = store(settings)
    report = build_report(engine, version)
    target = save_report(report, out or settings.export_root / f"v{report.version}")
    h = report.headline()
    console.print(
        f"version {h['version']}: {h['total_instances']:,} instances, {h['total_tasks']:,} "
        f"valid tasks, {h['total_datasets']:,} datasets, ${h['total_cost_usd']:.4f}",
        soft_wrap=True,
    )
    console.print(f"report: {target}", soft_wrap=True)
