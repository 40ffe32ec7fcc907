"""Bad input fails at the door, and every expected failure is one line with what to do: no
traceback unless -v asks for it (issue 12)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dynosaur.settings import Settings
from dynosaur.store import batches
from tests.run.conftest import error_lines, run_cli


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--since", "yesterday", "--until", "2024-03-01"], "invalid window"),
        (["--since", "2024-03-02", "--until", "2024-03-01"], "invalid window"),
        (["--day", "2024-02-30"], "invalid window"),
        (["--day", "2024-03-01", "--since", "2024-03-01", "--until", "2024-03-02"], "not both"),
        (["--since", "2024-03-01"], "both ends"),
    ],
)
def test_a_bad_window_is_one_line_and_exit_1_before_the_store_is_opened(
    settings: Settings, args: list[str], said: str
) -> None:
    # An unreachable store: the request is checked before it is opened.
    result = run_cli(settings, "grow", *args, DYNOSAUR_DATABASE_URL="postgresql://x@127.0.0.1:9/x")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    lines = error_lines(result)
    assert len(lines) == 1 and said in lines[0], result.stderr


def test_an_unreachable_store_is_one_line_and_verbose_shows_the_traceback(
    settings: Settings,
) -> None:
    url = "postgresql://postgres@127.0.0.1:9/nowhere"
    quiet = run_cli(settings, "status", DYNOSAUR_DATABASE_URL=url)
    assert quiet.returncode != 0
    assert "Traceback" not in quiet.stderr + quiet.stdout
    lines = error_lines(quiet)
    assert len(lines) == 1 and "127.0.0.1:9" in lines[0] and "DYNOSAUR_DATABASE_URL" in lines[0]
    verbose = run_cli(settings, "-v", "status", DYNOSAUR_DATABASE_URL=url)
    assert verbose.returncode == quiet.returncode
    assert "Traceback" in verbose.stderr and len(error_lines(verbose)) == 1


def test_a_malformed_database_url_is_one_line(settings: Settings) -> None:
    result = run_cli(settings, "status", DYNOSAUR_DATABASE_URL="postgresql://a:b@host:notaport/x")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    lines = error_lines(result)
    assert len(lines) == 1 and "not a database URL" in lines[0]
    assert "a:b" not in result.stderr  # the URL (and its password) is not echoed


def test_a_publish_lock_timeout_is_one_line_and_the_reader_cannot_take_the_lock(
    settings: Settings, store: Engine
) -> None:
    batch = batches.open_batch(store, "manual:locked")
    with store.connect() as holder:
        holder.execute(sa.text("SELECT id FROM publish_lock FOR UPDATE"))  # another publisher
        result = run_cli(
            settings, "publish", "--batch", str(batch.id), DYNOSAUR_LOCK_TIMEOUT_S="0.5"
        )
        holder.rollback()
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    lines = error_lines(result)
    assert len(lines) == 1 and "publish lock" in lines[0] and "DYNOSAUR_LOCK_TIMEOUT_S" in lines[0]
    assert batches.get_batch(store, batch.id).status == "building"

    # The read-only role may take advisory locks, but not the publish lock: publishing goes on.
    with store.connect() as reader:
        reader.execute(sa.text(f'SET ROLE "{settings.reader_role}"'))
        reader.execute(sa.text("SELECT pg_advisory_lock(x'44594E01'::int)"))
        with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
            reader.execute(sa.text("SELECT id FROM publish_lock FOR UPDATE"))
        reader.rollback()
        done = batches.publish_batch(store, batch.id, lock_timeout_s=5)
        assert done.status == "empty"
        reader.execute(sa.text("SELECT pg_advisory_unlock_all()"))
        reader.execute(sa.text("RESET ROLE"))
