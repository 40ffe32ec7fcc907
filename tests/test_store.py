"""The store: migrations, constraints, the read-only role, and both ways of reaching Postgres."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dynosaur.reasons import Reason, catalogue
from dynosaur.settings import Settings
from dynosaur.store import get_engine, schema_status, upgrade
from dynosaur.store.engine import sqlalchemy_url
from dynosaur.store.migrations import TABLES, view_names
from tests.conftest import command_env, embedded_data_dir


def _fresh_engine(databases, label: str) -> Engine:
    return sa.create_engine(sqlalchemy_url(databases.create(label)), poolclass=sa.NullPool)


def test_migrations_apply_from_empty_and_are_idempotent(databases, reader_role) -> None:
    engine = _fresh_engine(databases, "migrate")
    before = schema_status(engine)
    assert before.applied == [] and before.pending
    applied = upgrade(engine, reader_role)
    assert applied == before.pending
    after = schema_status(engine)
    assert after.pending == [] and after.version == applied[-1]
    assert set(after.table_counts) == set(TABLES)
    assert upgrade(engine, reader_role) == []  # second run: nothing to do
    assert schema_status(engine).applied == after.applied
    with engine.connect() as conn:
        codes = set(conn.execute(sa.text("SELECT code FROM reason")).scalars())
    assert codes == {code for code, _, _ in catalogue()}
    engine.dispose()


def test_every_reason_has_a_description() -> None:
    assert {code for code, _, _ in catalogue()} == {r.value for r in Reason}


def _dataset(conn: sa.Connection, dataset_id: str = "org/ds", sha: str = "abc") -> int:
    return conn.execute(
        sa.text(
            "INSERT INTO hub_dataset (dataset_id, sha, discovered_via, hub_url) "
            "VALUES (:d, :s, 'created', 'https://huggingface.co/datasets/' || :d) RETURNING id"
        ),
        {"d": dataset_id, "s": sha},
    ).scalar_one()


def test_same_dataset_revision_cannot_be_stored_twice(store: Engine) -> None:
    with store.begin() as conn:
        _dataset(conn)
        _dataset(conn, sha="def")  # a new revision of the same dataset is a new row
    with pytest.raises(sa.exc.IntegrityError), store.begin() as conn:
        _dataset(conn)


def test_same_config_and_same_llm_request_cannot_be_stored_twice(store: Engine) -> None:
    with store.begin() as conn:
        ds = _dataset(conn)
        conn.execute(
            sa.text("INSERT INTO dataset_config (hub_dataset_id, config_name) VALUES (:d, 'x')"),
            {"d": ds},
        )
        conn.execute(
            sa.text(
                "INSERT INTO llm_call (request_hash, model, prompt_version, messages) "
                "VALUES ('h1', 'm', 'v1', '[]')"
            )
        )
    with pytest.raises(sa.exc.IntegrityError), store.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO dataset_config (hub_dataset_id, config_name) VALUES (:d, 'x')"),
            {"d": ds},
        )
    with pytest.raises(sa.exc.IntegrityError), store.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO llm_call (request_hash, model, prompt_version, messages) "
                "VALUES ('h1', 'other', 'v1', '[]')"
            )
        )


def test_unknown_reason_codes_and_reasonless_skips_are_rejected(store: Engine) -> None:
    with pytest.raises(sa.exc.IntegrityError), store.begin() as conn:
        ds = _dataset(conn)
        conn.execute(
            sa.text("UPDATE hub_dataset SET status = 'skipped', reason = 'made_up' WHERE id = :i"),
            {"i": ds},
        )
    with pytest.raises(sa.exc.IntegrityError), store.begin() as conn:
        ds = _dataset(conn)
        conn.execute(sa.text("UPDATE hub_dataset SET status = 'skipped' WHERE id = :i"), {"i": ds})


def test_versions_are_unique_and_only_published_batches_have_one(store: Engine) -> None:
    insert = sa.text(
        "INSERT INTO batch (run_key, status, version, published_at) VALUES (:k, :s, :v, :p)"
    )
    with store.begin() as conn:
        conn.execute(insert, {"k": "a", "s": "published", "v": 1, "p": "2026-01-01"})
    with pytest.raises(sa.exc.IntegrityError), store.begin() as conn:
        conn.execute(insert, {"k": "b", "s": "published", "v": 1, "p": "2026-01-02"})
    with pytest.raises(sa.exc.IntegrityError), store.begin() as conn:
        conn.execute(insert, {"k": "c", "s": "building", "v": 2, "p": None})
    with pytest.raises(sa.exc.IntegrityError), store.begin() as conn:
        conn.execute(insert, {"k": "a", "s": "building", "v": None, "p": None})


def test_reader_role_reads_views_but_not_tables(store: Engine, reader_role: str) -> None:
    with store.connect() as conn:
        conn.exec_driver_sql(f"SET ROLE {reader_role}")
        for view in view_names():
            conn.execute(sa.text(f"SELECT * FROM {view} LIMIT 1")).all()
        conn.exec_driver_sql("RESET ROLE")
    for table in TABLES:
        with (
            pytest.raises(sa.exc.ProgrammingError, match="permission denied"),
            store.connect() as conn,
        ):
            conn.exec_driver_sql(f"SET ROLE {reader_role}")
            conn.execute(sa.text(f"SELECT * FROM {table} LIMIT 1"))
    with pytest.raises(sa.exc.ProgrammingError, match="permission denied"), store.connect() as conn:
        conn.exec_driver_sql(f"SET ROLE {reader_role}")
        conn.execute(sa.text("INSERT INTO batch (run_key) VALUES ('x')"))


def test_views_show_only_published_batches(store: Engine) -> None:
    with store.begin() as conn:
        ds = _dataset(conn)
        cfg = conn.execute(
            sa.text(
                "INSERT INTO dataset_config (hub_dataset_id, config_name) VALUES (:d, 'c') "
                "RETURNING id"
            ),
            {"d": ds},
        ).scalar_one()
        call = conn.execute(
            sa.text(
                "INSERT INTO llm_call (request_hash, model, prompt_version, messages, status, "
                "response) VALUES ('h', 'm', 'v', '[]', 'succeeded', '[]') RETURNING id"
            )
        ).scalar_one()
        gen = conn.execute(
            sa.text(
                "INSERT INTO generation (config_id, prompt_kind, request_hash, llm_call_id, "
                "status) VALUES (:c, 'description_aware', 'h', :l, 'succeeded') RETURNING id"
            ),
            {"c": cfg, "l": call},
        ).scalar_one()
        batches = {}
        for key, state in (("pub", "published"), ("wip", "building")):
            batches[key] = conn.execute(
                sa.text(
                    "INSERT INTO batch (run_key, status, version, published_at) VALUES "
                    "(:k, :s, CASE WHEN :s = 'published' THEN 1 END, "
                    "CASE WHEN :s = 'published' THEN now() END) RETURNING id"
                ),
                {"k": key, "s": state},
            ).scalar_one()
        for pos, key in enumerate(("pub", "wip")):
            task = conn.execute(
                sa.text(
                    "INSERT INTO task (config_id, generation_id, position, instruction, "
                    "input_fields, output_field, status, batch_id, fingerprint) VALUES "
                    "(:c, :g, :p, 'do it', '{a}', 'b', 'valid', :b, :f) RETURNING id"
                ),
                {"c": cfg, "g": gen, "p": pos, "b": batches[key], "f": key},
            ).scalar_one()
            conn.execute(
                sa.text(
                    "INSERT INTO instance (task_id, batch_id, row_index, instruction, input, "
                    "output, license, license_class, website, source) VALUES "
                    "(:t, :b, 0, 'do it', 'x', :o, 'mit', 'permissive', 'w', 'org/ds')"
                ),
                {"t": task, "b": batches[key], "o": key},
            )
        rows = conn.execute(sa.text("SELECT output, version FROM collection")).all()
        summary = dict(conn.execute(sa.text("SELECT status, instances FROM batch_summary")).all())
    assert rows == [("pub", 1)]
    assert summary == {"published": 1, "building": 1}


def test_embedded_postgres_starts_migrates_and_is_reused(reader_role: str) -> None:
    """The default path: no URL configured, pgserver starts in the data folder and stays up."""
    from dynosaur.store.embedded import stop_embedded

    data_dir = embedded_data_dir() / "data"  # not under tmp_path: see embedded_data_dir
    settings = Settings(database_url=None, data_dir=data_dir, reader_role=reader_role)
    env = command_env(DYNOSAUR_DATA_DIR=str(settings.data_dir), DYNOSAUR_READER_ROLE=reader_role)
    try:
        outputs = []
        for _ in range(2):
            done = subprocess.run(
                [sys.executable, "-m", "dynosaur.cli.main", "db", "upgrade"],
                env=env,
                capture_output=True,
                text=True,
            )
            assert done.returncode == 0, done.stdout + done.stderr
            outputs.append(done.stdout)
        assert f"applied {len(migration_ids())} migration(s)" in outputs[0]
        assert "schema already up to date" in outputs[1]
        engine = get_engine(settings)  # reuses the server the CLI left running
        info = schema_status(engine)
        assert info.pending == [] and info.table_counts["batch"] == 0
        engine.dispose()
    finally:
        stop_embedded(settings.embedded_pgdata)


def migration_ids() -> list[str]:
    """Ids of every migration shipped in sql/migrations."""
    from dynosaur.store.migrations import sql_dir

    return sorted(p.stem for p in (sql_dir() / "migrations").glob("*.sql"))


def dynosaur_db(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``dynosaur db ...`` as a user runs it: the installed command, in its own process."""
    command = [str(Path(sys.executable).parent / "dynosaur"), "db", *args]
    return subprocess.run(
        command, env={**env, "COLUMNS": "1000"}, capture_output=True, text=True, timeout=300
    )


def test_db_status_and_upgrade_on_the_command_line(databases, reader_role: str) -> None:
    url = databases.create("cli")
    env = command_env(DYNOSAUR_DATABASE_URL=url, DYNOSAUR_READER_ROLE=reader_role)
    ids = migration_ids()

    empty = dynosaur_db("status", env=env)
    assert empty.returncode == 0, empty.stderr
    assert "schema version: empty (run: dynosaur db upgrade)" in empty.stdout
    assert f"pending migrations: {', '.join(ids)}" in empty.stdout
    assert "postgresql" in empty.stdout and ":5432/" in empty.stdout

    upgraded = dynosaur_db("upgrade", env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    assert f"applied {len(ids)} migration(s): {', '.join(ids)}" in upgraded.stdout
    assert f"schema version: {ids[-1]}" in upgraded.stdout

    status = dynosaur_db("status", env=env)
    assert status.returncode == 0, status.stderr
    assert f"schema version: {ids[-1]}" in status.stdout and "pending" not in status.stdout
    for table in TABLES:
        assert table in status.stdout
    assert "views: published_instance, collection," in status.stdout
    assert "outcome_by_reason" in status.stdout
    assert "schema already up to date" in dynosaur_db("upgrade", env=env).stdout


def test_db_commands_name_an_unreachable_store_in_one_line(unreachable_url: str) -> None:
    done = dynosaur_db("status", env=command_env(DYNOSAUR_DATABASE_URL=unreachable_url))
    assert done.returncode == 1
    assert "error: cannot connect to the store at" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


@pytest.fixture
def unreachable_url() -> str:
    """A Postgres URL on a port nobody listens on."""
    from tests.system.cluster import free_port

    return f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
