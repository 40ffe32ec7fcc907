"""``dynosaur discover`` and ``dynosaur collect`` as a user runs them."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from dynosaur.cli.main import app
from dynosaur.emulators.hub import HubEmulator
from dynosaur.settings import Settings
from tests.emulators.conftest import created_on
from tests.hub.conftest import rows_of


@pytest.fixture
def env(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, store: Engine, own_hub: HubEmulator
) -> None:
    """The CLI's environment: the test store and the emulator."""
    for name, value in {
        "DYNOSAUR_DATABASE_URL": settings.database_url or "",
        "DYNOSAUR_READER_ROLE": settings.reader_role,
        "DYNOSAUR_DATA_DIR": str(settings.data_dir),
        "DYNOSAUR_HUB_ENDPOINT": own_hub.url,
        "DYNOSAUR_VIEWER_URL": own_hub.url,
    }.items():
        monkeypatch.setenv(name, value)


def test_discover_then_collect_a_window_prints_summary_tables(env: None, store: Engine) -> None:
    runner = CliRunner()
    found = runner.invoke(app, ["discover", "--since", "2024-03-02", "--until", "2024-03-03"])
    assert found.exit_code == 0, found.output
    day = created_on("2024-03-02")
    assert f"{len(day)} new of {len(day)} seen" in found.output
    assert "discovered" in found.output

    collected = runner.invoke(app, ["collect", "--limit", "3"])
    assert collected.exit_code == 0, collected.output
    assert "collect: datasets" in collected.output and "status" in collected.output
    waiting = rows_of(store, "SELECT count(*) FROM hub_dataset WHERE status = 'discovered'")
    assert waiting[0][0] == len(day) - 3

    rest = runner.invoke(app, ["collect"])
    assert rest.exit_code == 0, rest.output
    assert "language_not_allowed" in collected.output + rest.output  # a German dataset that day
    again = runner.invoke(app, ["collect"])
    assert "no dataset is waiting" in again.output


def test_discover_ids_and_bad_arguments(env: None, store: Engine) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["discover", "--ids", "dynosaur-fixtures/squad-like,bad'id"])
    assert result.exit_code == 0, result.output
    assert "invalid_id" in result.output and "not added" in result.output
    assert rows_of(store, "SELECT dataset_id FROM hub_dataset") == [
        ("dynosaur-fixtures/squad-like",)
    ]

    neither = runner.invoke(app, ["discover"])
    assert neither.exit_code == 1 and "--since and --until" in neither.output
    both = runner.invoke(app, ["discover", "--ids", "a", "--since", "2024-03-01"])
    assert both.exit_code == 1 and "not both" in both.output
