"""Entry point of the ``dynosaur`` command.

Commands import what they need when they run, and the command groups that pull in large
modules (``emulate``: the emulators' web framework; ``airflow`` and ``demo``) are added only
when the command line names them (or asks for the overall help), so that ``dynosaur status``
or ``dynosaur generate`` with nothing to do answer at once.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import typer

from dynosaur import __version__
from dynosaur.cli.common import reports_errors, setup_logging

HELP = (
    "Grow an instruction-tuning collection from newly published Hugging Face datasets.\n\n"
    "Settings come from DYNOSAUR_* environment variables (see the README). "
    "With no DYNOSAUR_DATABASE_URL the store is an embedded Postgres.\n\n"
    "Example: dynosaur db upgrade && dynosaur db status"
)
# Command groups whose modules are heavy to import: added only when named (or for --help).
HEAVY = ("emulate", "airflow", "demo")
_ROOT_OPTIONS = {"-v", "--verbose"}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"dynosaur {__version__}")
        raise typer.Exit()


def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log progress details to stderr."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    setup_logging(verbose)


def build_app(command: str | None = None) -> typer.Typer:
    """The ``dynosaur`` command; with ``command`` (the one the command line names) the heavy
    groups other than it are left out."""
    from dynosaur.cli import benchmarks as benchmarks_cli
    from dynosaur.cli import curate as curate_cli
    from dynosaur.cli import db
    from dynosaur.cli import generate as generate_cli
    from dynosaur.cli import hub as hub_cli
    from dynosaur.cli import report as report_cli
    from dynosaur.cli import retract as retract_cli
    from dynosaur.cli import select as select_cli

    app = typer.Typer(
        name="dynosaur",
        help=HELP,
        no_args_is_help=True,
        pretty_exceptions_show_locals=False,
    )
    app.callback()(_root)
    app.add_typer(db.app, name="db")
    every = command is None or command not in _known_light()
    if every or command == "emulate":
        from dynosaur.cli import emulate

        app.add_typer(emulate.app, name="emulate")
    app.add_typer(select_cli.app, name="select")
    app.add_typer(benchmarks_cli.app, name="benchmarks")
    if every or command in ("airflow", "demo"):
        from dynosaur.cli import airflow_cli

        app.add_typer(airflow_cli.app, name="airflow")
        app.command()(reports_errors(airflow_cli.demo))
    curate_cli.register(app)
    hub_cli.register(app)
    generate_cli.register(app)
    retract_cli.register(app)
    report_cli.register(app)
    return app


def _known_light() -> set[str]:
    """Commands that need none of the heavy groups."""
    return {"db", "select", "curate", "publish", "grow", "export", "status", "discover",
            "collect", "generate", "retract", "report",
            "benchmarks"}  # fmt: skip


def command_of(argv: Sequence[str]) -> str | None:
    """The command a command line names (None for none, or for options only)."""
    for arg in argv:
        if arg in _ROOT_OPTIONS:
            continue
        return None if arg.startswith("-") else arg
    return None


def __getattr__(name: str) -> Any:
    """``app``: the whole command, built on first use (tests invoke it with CliRunner)."""
    if name == "app":
        app = build_app()
        globals()["app"] = app
        return app
    raise AttributeError(name)


def main() -> None:
    """Console-script entry point."""
    build_app(command_of(sys.argv[1:]))()


if __name__ == "__main__":
    main()
