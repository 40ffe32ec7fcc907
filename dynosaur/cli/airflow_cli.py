"""``dynosaur demo`` (the offline growth run) and ``dynosaur airflow standalone``."""

from __future__ import annotations

from pathlib import Path

import typer

from dynosaur.airflow.demo import DEMO_DATABASE
from dynosaur.cli.common import console, err_console, load_settings, reports_errors, table

app = typer.Typer(
    help=(
        "Run Airflow on this machine with the Dynosaur DAGs, pools and connections.\n\n"
        "Example: dynosaur airflow standalone   (then open http://localhost:8080)"
    ),
    no_args_is_help=True,
)


def demo(
    database: str = typer.Option(
        DEMO_DATABASE,
        help="Database the demo recreates on the store's server (never your own store's).",
    ),
) -> None:
    """The offline demo: three simulated days of the daily growth DAG, then what they built.

    Runs the real growth DAG (Airflow's dag.test, SQLite metadata) against the Hub and LLM
    emulators on 127.0.0.1 and a demo database on the store's server (the embedded Postgres
    unless DYNOSAUR_DATABASE_URL is set), recreated on every run. Nothing leaves the machine
    and nothing is paid. Prints each day's version, the versions, the outcomes by reason and
    two example queries from sql/queries, and exports the last version.

    Example: dynosaur demo
    """
    from dynosaur.airflow.demo import DEMO_DAYS, DemoDay, run_demo

    settings = load_settings()
    console.print(
        "[bold]Dynosaur offline demo[/]: the growth DAG for "
        f"{', '.join(DEMO_DAYS)} against the Hub and LLM emulators"
    )

    def on_day(day: DemoDay) -> None:
        f = day.figures
        if day.state != "success":
            console.print(
                f"  [red]{day.day}: run {day.state}[/] (failed tasks: "
                f"{', '.join(day.failed_tasks) or '-'})"
            )
        elif day.version is None:
            console.print(f"  {day.day}: nothing new ({day.seconds:.1f} s)")
        else:
            console.print(
                f"  {day.day}: [green]version {day.version}[/]: {f.get('datasets', 0)} datasets, "
                f"{f.get('tasks_valid', 0)} valid tasks, {f.get('tasks_rejected', 0)} rejected, "
                f"{f.get('instances', 0):,} instances, ${f.get('cost_usd', 0):.4f} "
                f"({day.seconds:.1f} s)"
            )

    result = run_demo(
        settings,
        database=database,
        on_day=on_day,
        on_step=lambda m: console.print(f"[dim]… {m}[/]"),
    )
    console.print(
        f"store: {result.database}\nHub emulator: {result.hub_url}   "
        f"LLM emulator: {result.llm_url}\nAirflow home: {result.airflow_home}",
        soft_wrap=True,
    )
    console.print(
        table(
            "Versions: SELECT * FROM batch_summary WHERE status = 'published' (USD: the "
            "emulator's token counts at the configured model's prices)",
            ["version", "day", "datasets", "valid", "rejected", "instances", "USD"],
            [
                (
                    v.version,
                    v.window_start.date().isoformat() if v.window_start else "",
                    v.datasets,
                    v.tasks_valid,
                    v.tasks_rejected,
                    v.instances,
                    f"{v.cost_usd:.4f}",
                )
                for v in result.versions
            ],
        )
    )
    console.print(
        table(
            "Skipped, deferred, failed and rejected: SELECT * FROM outcome_by_reason",
            ["entity", "status", "reason", "count"],
            [(o.entity, o.status, o.reason, o.count) for o in result.outcomes],
        )
    )
    latest = result.versions[-1].version if result.versions else None
    for query in result.queries:
        console.print(f"\n[bold]{query.file}[/] (version {latest}): {query.question}")
        console.print(table("", query.columns, query.rows))
    if result.export_files:
        console.print("exported the latest version (export DAG):")
        for path in result.export_files:
            console.print(f"  {path}", soft_wrap=True)
    console.print(f"done in {result.seconds:.0f} s")
    if not result.ok:
        err_console.print("[bold red]error:[/] a growth run failed; see the lines above")
        raise typer.Exit(1)


@app.command()
@reports_errors
def standalone(
    home: Path | None = typer.Option(
        None, help="Airflow home (default: <data dir>/airflow); kept between starts."
    ),
    port: int = typer.Option(8080, min=1, max=65535, help="Port of the web UI and REST API."),
    emulators: bool | None = typer.Option(
        None,
        "--emulators/--real",
        help="Point the DAGs at the Hub and LLM emulators (default: when no real endpoint or "
        "key is configured) or at the configured endpoints.",
    ),
) -> None:
    """Start Airflow (api-server, scheduler, dag-processor, triggerer) with the Dynosaur DAGs.

    Creates what the DAGs need: the metadata database (SQLite), the 'llm' pool and the
    connections dynosaur_store, dynosaur_llm and dynosaur_hub (from your DYNOSAUR_* settings,
    passed as environment variables, never written to disk). Without real endpoints it starts
    the emulators too, so the DAGs run offline; with real ones the DAGs start paused.

    Log in at http://localhost:PORT as 'admin' with the password printed below (kept in
    <home>/passwords.json). Ctrl-C stops everything.

    Example: dynosaur airflow standalone --port 8080
    """
    from dynosaur.airflow.standalone import ADMIN, Standalone, run_standalone

    settings = load_settings()

    def on_ready(started: Standalone) -> None:
        console.print(
            f"[bold]Airflow[/] on {started.url}  login: [bold]{ADMIN}[/] / "
            f"[bold]{started.password}[/]  (kept in {started.passwords_file})\nCtrl-C stops it.",
            soft_wrap=True,
        )

    code = run_standalone(
        settings,
        home=(home or settings.data_dir / "airflow").expanduser().resolve(),
        port=port,
        emulators=emulators,
        on_step=console.print,
        on_ready=on_ready,
    )
    if code:
        raise typer.Exit(code)
