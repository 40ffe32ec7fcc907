"""The curate, publish, export and status commands, driven through typer like a user would."""

from __future__ import annotations

import json

import pytest
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from dynosaur.cli.main import app
from dynosaur.settings import Settings
from tests.curate.factory import StoreFactory, cli_environment


@pytest.fixture
def cli(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    cli_environment(monkeypatch, settings)
    return CliRunner()


def test_curate_then_publish_makes_version_1_and_export_writes_it(
    cli: CliRunner, store: Engine, factory: StoreFactory, tmp_path
) -> None:
    factory.task(factory.sentiment_config(), "Classify the review.", ["text"], "label")
    factory.task(factory.sentiment_config("org/other"), "Bad.", ["nope"], "label")
    curated = cli.invoke(app, ["curate"])
    assert curated.exit_code == 0, curated.output
    assert "unknown_field" in curated.output and "valid" in curated.output
    published = cli.invoke(app, ["publish"])
    assert published.exit_code == 0, published.output
    assert "version 1" in published.output
    out = tmp_path / "hf"
    exported = cli.invoke(app, ["export", "--format", "hf", "--out", str(out)])
    assert exported.exit_code == 0, exported.output
    assert (out / "README.md").exists() and "mit" in exported.output
    jsonl = tmp_path / "v1.jsonl"
    assert cli.invoke(app, ["export", "-V", "1", "--out", str(jsonl)]).exit_code == 0
    first = json.loads(jsonl.read_text().splitlines()[0])
    assert first["output"] == "neg" and first["taskname"] == "org/sentiment"


def test_publish_without_a_curated_batch_is_one_red_line(cli: CliRunner, store: Engine) -> None:
    result = cli.invoke(app, ["publish"])
    assert result.exit_code == 1
    assert "no manual batch is building" in result.output
    assert "Traceback" not in result.output


def test_every_command_has_help_with_an_example(cli: CliRunner) -> None:
    for command in ("curate", "publish", "grow", "export", "status"):
        result = cli.invoke(app, [command, "--help"])
        assert result.exit_code == 0 and "Example: dynosaur" in result.output, command
