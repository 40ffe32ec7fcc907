"""``dynosaur demo`` (the offline growth run) and ``dynosaur airflow standalone``."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
from contextlib import ExitStack
from pathlib import Path

import typer
from pydantic import SecretStr

from dynosaur.cli.common import console, err_console, load_settings, reports_errors, table
from dynosaur.errors import UsageError
from dynosaur.settings import Settings

app = typer.Typer(
    help=(
        "Run Airflow on this machine with the Dynosaur DAGs, pools and connections.\n\n"
        "Example: dynosaur airflow standalone   (then open http://localhost:8080)"
    ),
    no_args_is_help=True,
)

ADMIN = "admin"


def demo(
    database: str = typer.Option(
        "dynosaur_demo",
        help="Database the demo recreates on the store's server (never your own store's).",
    ),
) -> None:
    """The offline demo: three simulated days of the daily growth DAG, then what they built.

    Runs the real growth DAG (Airflow's dag.test, SQLite metadata) against the Hub and LLM
    emulators on 127.0.0.1 and a demo database on the store's server (the embedded Postgres
    unless DYNOSAUR_DATABASE_URL is set), recreated on every run. Nothing leaves the machine
    and nothing is paid. Prints each day's version, the versions, the rejections by reason and
    two example queries from sql/queries, and exports the last version.

    Example: dynosaur demo
    """
    from dynosaur.demo import DEMO_DAYS, DemoDay, run_demo

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
                    v["version"],
                    v["window_start"].date().isoformat() if v["window_start"] else "",
                    v["datasets"],
                    v["tasks_valid"],
                    v["tasks_rejected"],
                    v["instances"],
                    f"{float(v['cost_usd']):.4f}",
                )
                for v in result.versions
            ],
        )
    )
    console.print(
        table(
            "Skipped, deferred and rejected: SELECT * FROM rejection_by_reason",
            ["entity", "status", "reason", "count"],
            result.rejections,
        )
    )
    latest = max((v["version"] for v in result.versions), default=None)
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


def _uses_real_endpoints(settings: Settings) -> bool:
    defaults = Settings.model_fields
    return (
        settings.llm_api_key is not None
        or settings.llm_base_url != defaults["llm_base_url"].default
        or settings.hub_endpoint != defaults["hub_endpoint"].default
    )


def _password(home: Path) -> tuple[Path, str]:
    """The admin password, generated once per Airflow home and kept in its passwords file."""
    import json

    path = home / "passwords.json"
    if path.exists():
        return path, json.loads(path.read_text())[ADMIN]
    password = secrets.token_urlsafe(12)
    home.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({ADMIN: password}))
    path.chmod(0o600)
    return path, password


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


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
    from dynosaur import airflow_setup
    from dynosaur.store import open_store

    settings = load_settings()
    home = (home or settings.data_dir / "airflow").expanduser().resolve()
    use_emulators = not _uses_real_endpoints(settings) if emulators is None else emulators
    with ExitStack() as stack:
        if use_emulators:
            from dynosaur.emulators.hub import HubEmulator
            from dynosaur.emulators.llm import LLMEmulator

            hub = stack.enter_context(HubEmulator())
            llm = stack.enter_context(LLMEmulator())
            settings = settings.model_copy(
                update={"hub_endpoint": hub.url, "viewer_url": hub.url,
                        "llm_base_url": llm.base_url, "llm_api_key": SecretStr("sk-emulator")}
            )  # fmt: skip
            console.print(f"Hub emulator on {hub.url}, LLM emulator on {llm.base_url}")
        elif settings.llm_api_key is None:
            raise UsageError("--real needs DYNOSAUR_LLM_API_KEY (or use the emulators)")
        open_store(settings)  # the store is reachable and migrated before any DAG runs
        passwords, password = _password(home)
        env = {
            # Offline the DAGs run at once; against real endpoints (real money) they start paused.
            **airflow_setup.airflow_env(home, paused=not use_emulators),
            **airflow_setup.connection_env(settings),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__BASE_URL": f"http://localhost:{port}",
        }
        console.print(f"preparing {home} (metadata database, llm pool) …")
        airflow_setup.prepare_home(home, env, llm_slots=4)
        console.print(
            f"[bold]Airflow[/] on http://localhost:{port}  login: [bold]{ADMIN}[/] / "
            f"[bold]{password}[/]  (kept in {passwords})\nCtrl-C stops it.",
            soft_wrap=True,
        )
        airflow = airflow_setup.airflow_bin()
        # `airflow standalone` starts its components as `airflow ...` found on PATH.
        path = os.pathsep.join([str(Path(airflow).parent), os.environ.get("PATH", "")])
        proc = subprocess.Popen(
            [airflow, "standalone"],
            env={**os.environ, **env, "PATH": path},
            start_new_session=True,
        )
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            proc.wait()
        except KeyboardInterrupt:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if proc.returncode not in (0, -signal.SIGTERM, None):
            raise typer.Exit(proc.returncode)
