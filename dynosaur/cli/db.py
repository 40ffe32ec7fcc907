"""``dynosaur db``: create, upgrade and inspect the store's schema."""

from __future__ import annotations

import typer

from dynosaur.cli.common import console, load_settings, reports_errors, table
from dynosaur.store import check_connection, get_engine, schema_status
from dynosaur.store import upgrade as schema_upgrade

app = typer.Typer(
    help=(
        "Create, upgrade and inspect the store's schema.\n\n"
        "Without DYNOSAUR_DATABASE_URL the store is an embedded Postgres in your data folder, "
        "started on first use.\n\n"
        "Example: dynosaur db upgrade && dynosaur db status"
    ),
    no_args_is_help=True,
)


@app.command()
@reports_errors
def upgrade(
    force: bool = typer.Option(False, help="Re-create views and grants even if unchanged."),
) -> None:
    """Apply pending migrations from sql/migrations, then (re)create views and the reader role.

    Safe to run any number of times: an up-to-date store is left as it is.

    Example: DYNOSAUR_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/dynosaur dynosaur db upgrade
    """
    settings = load_settings()
    engine = get_engine(settings)
    check_connection(engine)
    applied = schema_upgrade(
        engine, settings.reader_role, force=force, lock_timeout_s=settings.lock_timeout_s
    )
    if applied:
        console.print(f"applied {len(applied)} migration(s): {', '.join(applied)}", soft_wrap=True)
    else:
        console.print("schema already up to date")
    _print_status(engine)


@app.command()
@reports_errors
def status() -> None:
    """Show the store's URL, schema version, pending migrations and row counts.

    Example: dynosaur db status
    """
    settings = load_settings()
    engine = get_engine(settings)
    check_connection(engine)
    _print_status(engine)


def _print_status(engine) -> None:
    info = schema_status(engine)
    console.print(f"store: {info.url}", soft_wrap=True)
    console.print(f"schema version: {info.version or 'empty (run: dynosaur db upgrade)'}")
    if info.pending:
        console.print(f"[yellow]pending migrations:[/] {', '.join(info.pending)}", soft_wrap=True)
    if info.table_counts:
        console.print(table("rows", ["table", "rows"], info.table_counts.items()))
    if info.views:
        console.print(f"views: {', '.join(info.views)}", soft_wrap=True)
