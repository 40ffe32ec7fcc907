"""Entry point of the ``dynosaur`` command."""

from __future__ import annotations

import typer

from dynosaur import __version__
from dynosaur.cli import airflow_cli, db, emulate
from dynosaur.cli import benchmarks as benchmarks_cli
from dynosaur.cli import curate as curate_cli
from dynosaur.cli import generate as generate_cli
from dynosaur.cli import hub as hub_cli
from dynosaur.cli import retract as retract_cli
from dynosaur.cli import select as select_cli
from dynosaur.cli.common import reports_errors, setup_logging

app = typer.Typer(
    name="dynosaur",
    help=(
        "Grow an instruction-tuning collection from newly published Hugging Face datasets.\n\n"
        "Settings come from DYNOSAUR_* environment variables (see the README). "
        "With no DYNOSAUR_DATABASE_URL the store is an embedded Postgres.\n\n"
        "Example: dynosaur db upgrade && dynosaur db status"
    ),
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(db.app, name="db")
app.add_typer(emulate.app, name="emulate")
app.add_typer(select_cli.app, name="select")
app.add_typer(airflow_cli.app, name="airflow")
app.add_typer(benchmarks_cli.app, name="benchmarks")
curate_cli.register(app)
hub_cli.register(app)
generate_cli.register(app)
retract_cli.register(app)


app.command()(reports_errors(airflow_cli.demo))


def _version(value: bool) -> None:
    if value:
        typer.echo(f"dynosaur {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log progress details to stderr."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    setup_logging(verbose)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
