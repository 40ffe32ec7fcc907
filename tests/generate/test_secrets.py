"""The LLM API key never reaches logs, exceptions, command output or the store."""

from __future__ import annotations

import logging
import traceback

import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from dynosaur.cli.main import app
from dynosaur.errors import LLMAuthError, ServiceUnavailable
from dynosaur.generate import generate
from dynosaur.settings import Settings
from tests.generate.conftest import cli_env, error, fast_settings, insert_configs, rows_of

KEY = "sk-dynosaur-test-7f3a9c1e5b"


def _store_mentions(engine: Engine, needle: str) -> list[str]:
    """Every text-like column of every table that contains ``needle``."""
    with engine.connect() as conn:
        columns = conn.execute(
            sa.text(
                "SELECT table_name, column_name FROM information_schema.columns "
                "WHERE table_schema = 'public' AND data_type IN ('text', 'jsonb', 'json', "
                "'character varying', 'ARRAY') AND table_name IN (SELECT table_name FROM "
                "information_schema.tables WHERE table_schema = 'public' "
                "AND table_type = 'BASE TABLE')"
            )
        ).all()
        found = []
        for table, column in columns:
            hit = conn.execute(
                sa.text(f'SELECT 1 FROM "{table}" WHERE "{column}"::text LIKE :n LIMIT 1'),
                {"n": f"%{needle}%"},
            ).first()
            if hit:
                found.append(f"{table}.{column}")
        return found


def _echo_authorization(request) -> dict:
    # A hostile endpoint that quotes the credentials back in its error message.
    return error(401, f"Incorrect API key provided: {request.headers.get('authorization')}")


def test_the_api_key_appears_in_no_log_exception_output_or_column(
    store: Engine,
    settings: Settings,
    emulator,
    scripted,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    ids = insert_configs(store, 12)
    llm = emulator(rate_429=0.1, rate_5xx=0.1, rate_malformed=0.1, retry_after=0.01)
    keyed = fast_settings(settings, llm.base_url, llm_api_key=SecretStr(KEY))
    summary = generate(keyed, store, ids[:8], run_key="secret")
    assert summary.figures["generations_succeeded"] == 8

    hostile = scripted([(401, _echo_authorization, {})])
    with pytest.raises(LLMAuthError) as raised:
        generate(fast_settings(keyed, hostile.base_url), store, ids[8:], run_key="secret-2")
    assert hostile.requests[0]["headers"]["authorization"] == f"Bearer {KEY}"  # it was sent
    exception_text = "".join(traceback.format_exception(raised.value)) + repr(raised.value)

    runner = CliRunner()
    env = cli_env(settings, hostile.base_url, DYNOSAUR_LLM_API_KEY=KEY)
    result = runner.invoke(app, ["-v", "generate", "--ids", ",".join(map(str, ids[8:]))], env=env)
    assert result.exit_code == 1 and "rejected the API key" in result.output

    captured = capfd.readouterr()
    assert "Incorrect API key" in _failure_messages(store)  # the echo itself was stored...
    assert KEY not in _failure_messages(store)  # ...with the key scrubbed
    assert KEY not in caplog.text
    assert KEY not in captured.out + captured.err
    assert KEY not in exception_text
    assert KEY not in result.output
    assert _store_mentions(store, KEY) == []
    assert _store_mentions(store, "Incorrect API key")  # the grep does find what is there


def _failure_messages(engine: Engine) -> str:
    rows = rows_of(engine, "SELECT message FROM llm_call WHERE message IS NOT NULL")
    return " ".join(row.message for row in rows)


def test_a_key_echoed_in_server_errors_reaches_neither_store_nor_logs(
    store: Engine,
    settings: Settings,
    scripted,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    ids = insert_configs(store, 2)

    def echo(request) -> dict:
        return error(500, f"upstream refused {request.headers.get('authorization')}")

    hostile = scripted([(500, echo, {})])
    keyed = fast_settings(settings, hostile.base_url, llm_api_key=SecretStr(KEY), llm_max_retries=1)
    with pytest.raises(ServiceUnavailable) as raised:
        generate(keyed, store, ids, run_key="echo")
    assert "upstream refused" in _failure_messages(store)
    assert KEY not in _failure_messages(store) and KEY not in str(raised.value)
    assert KEY not in caplog.text
    assert _store_mentions(store, KEY) == []
