"""``dynosaur select``: commands store selections, list them, and report errors in one line."""

from __future__ import annotations

import inspect

import pytest
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from dynosaur.cli import common
from dynosaur.cli.main import app
from dynosaur.select import list_selections
from dynosaur.settings import Settings
from tests.curate.factory import StoreFactory, cli_environment
from tests.select.factory import ARITHMETIC, SENTIMENT, SUMMARY, TRANSLATION, add_batch

pytestmark = pytest.mark.select


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    cli_environment(monkeypatch, settings)
    monkeypatch.setattr(common.console, "width", 160)  # tables would wrap names at 80


def _run(*args: str):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def test_coreset_and_replay_commands_store_selections_that_list_shows(
    factory: StoreFactory, select_store: Engine, cli_env: None
) -> None:
    add_batch(factory, 1, [SENTIMENT, TRANSLATION])
    add_batch(factory, 2, [ARITHMETIC, SUMMARY])
    out = _run("select", "coreset", "--version", "2", "--count", "4", "--name", "core")
    assert out.exit_code == 0, out.output
    assert "selection core (coreset, version 2) stored: 4 instances" in out.output
    again = _run("select", "coreset", "--version", "2", "--count", "4", "--name", "core")
    assert "already stored, unchanged" in again.output
    out = _run("select", "replay", "--version", "2", "--tasks", "1")
    assert out.exit_code == 0, out.output
    listed = _run("select", "list")
    assert "core" in listed.output and "replay-v2-instruction-1-s0" in listed.output
    assert {s.name for s in list_selections(select_store)} == {"core", "replay-v2-instruction-1-s0"}
    assert _run("select", "drop", "core").exit_code == 0
    assert {s.name for s in list_selections(select_store)} == {"replay-v2-instruction-1-s0"}


def test_errors_are_one_red_line_and_exit_status_one(
    factory: StoreFactory, select_store: Engine, cli_env: None
) -> None:
    add_batch(factory, 1, [SENTIMENT])
    out = _run("select", "coreset", "--version", "4")
    assert out.exit_code == 1
    assert "error: version 4 of the collection is not published (the latest is 1)" in out.output
    out = _run("select", "coreset", "--version", "1", "--count", "2", "--fraction", "0.1")
    assert out.exit_code == 1 and "not both" in out.output
    out = _run("select", "learning-percentage", "--version", "1")
    assert out.exit_code == 1 and "needs a scorer model" in out.output


@pytest.mark.parametrize("command", ["coreset", "learning-percentage", "replay", "list", "drop"])
def test_every_command_has_help_with_an_example(command: str) -> None:
    out = _run("select", command, "--help")
    assert out.exit_code == 0 and "Example: dynosaur select" in out.output


def test_help_states_the_default_budgets_the_library_uses() -> None:
    from dynosaur.cli import select as commands
    from dynosaur.select import CORESET_FRACTION, LEARNING_PERCENTAGE_FRACTION

    def fraction_help(command: object) -> str:
        return inspect.signature(command).parameters["fraction"].default.help

    assert f"(default {CORESET_FRACTION:g})" in fraction_help(commands.coreset)
    assert f"(default {LEARNING_PERCENTAGE_FRACTION:g})" in fraction_help(
        commands.learning_percentage
    )
