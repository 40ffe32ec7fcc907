"""``dynosaur generate``: dry run, a real run with its summary, and errors as one line."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from dynosaur.cli.main import app
from dynosaur.settings import Settings
from tests.generate.conftest import cli_env, insert_configs


def test_dry_run_prints_an_estimate_and_sends_nothing(
    store: Engine, settings: Settings, emulator
) -> None:
    insert_configs(store, 4)
    llm = emulator()
    result = CliRunner().invoke(app, ["generate", "--dry-run"], env=cli_env(settings, llm.base_url))
    assert result.exit_code == 0, result.output
    assert "cost_usd_estimate" in result.output and "calls_to_send" in result.output
    assert llm.request_log == []


def test_generate_sends_the_queue_and_prints_the_summary(
    store: Engine, settings: Settings, emulator
) -> None:
    ids = insert_configs(store, 5)
    llm = emulator()
    env = cli_env(settings, llm.base_url)
    result = CliRunner().invoke(app, ["generate", "--limit", "3", "--budget", "1"], env=env)
    assert result.exit_code == 0, result.output
    assert "generate: configs" in result.output and "generated" in result.output
    assert "tasks_proposed" in result.output
    with store.connect() as conn:
        done = conn.execute(
            sa.text("SELECT id FROM dataset_config WHERE status = 'generated' ORDER BY id")
        ).scalars()
        assert list(done) == ids[:3]
    rest = CliRunner().invoke(app, ["generate", "--ids", f"{ids[3]},{ids[4]}"], env=env)
    assert rest.exit_code == 0 and len(llm.request_log) == 5
    nothing = CliRunner().invoke(app, ["generate"], env=env)
    assert nothing.exit_code == 0 and "no config is waiting" in nothing.output


def test_a_model_without_a_price_under_a_budget_is_one_red_line(
    store: Engine, settings: Settings, emulator
) -> None:
    insert_configs(store, 1)
    llm = emulator()
    env = cli_env(settings, llm.base_url)
    result = CliRunner().invoke(app, ["generate", "--model", "mystery", "--budget", "2"], env=env)
    assert result.exit_code == 1
    assert "no price is known for model 'mystery'" in result.output
    assert "Traceback" not in result.output and llm.request_log == []
