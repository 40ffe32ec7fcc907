"""Shared fixtures: a real Postgres database per test session, settings pointing at it.

With ``DYNOSAUR_TEST_DATABASE_URL`` (a server URL, e.g. the CI machine's Postgres) a fresh
database is created on that server for the session and dropped after it; without it an embedded
``pgserver`` is started in a temporary folder. Tests never touch a user's own store.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy.engine import Engine

from dynosaur.settings import Settings
from dynosaur.store import dispose_engines, open_store
from dynosaur.store.engine import sqlalchemy_url

if TYPE_CHECKING:
    from dynosaur.emulators.hub import HubEmulator
    from dynosaur.emulators.llm import LLMEmulator

REPO = Path(__file__).resolve().parents[1]

# Airflow reads its configuration once, at first import: point it at a throwaway home (SQLite
# metadata, our dags/) before any test module imports it. Never the user's ~/airflow.
if "DYNOSAUR_TEST_AIRFLOW_HOME" not in os.environ:
    _AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="dynosaur-airflow-"))
    atexit.register(shutil.rmtree, _AIRFLOW_HOME, True)
    os.environ["DYNOSAUR_TEST_AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
_AIRFLOW_HOME = Path(os.environ["DYNOSAUR_TEST_AIRFLOW_HOME"])
os.environ.update(
    {
        "AIRFLOW_HOME": str(_AIRFLOW_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_AIRFLOW_HOME / 'airflow.db'}",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
    }
)
# The project's shared folder (the 612-card Hub snapshot, reference tasks): ../shared beside the
# checkout, or DYNOSAUR_TEST_SHARED (e.g. for a git worktree kept elsewhere).
SHARED = Path(os.environ.get("DYNOSAUR_TEST_SHARED") or REPO.parent / "shared")
SHARED_SNAPSHOT = SHARED / "hub-snapshot"
SHARED_REFERENCE = SHARED / "reference" / "dynosaur-tasks.jsonl"

# Tables emptied between tests that use the `store` fixture, children first.
# Every table a test's runs write (the others follow by CASCADE); not the schema's own rows
# (schema_meta, reason, publish_lock) nor the content-keyed caches (embeddings).
DATA_TABLES = (
    "instance",
    "task",
    "generation",
    "llm_call",
    "dataset_config",
    "hub_dataset",
    "batch",
    "requested_dataset",
    "scoring_run",
    "selection",
    "retraction",
    "source_check",
    "benchmark",
)


def pytest_unconfigure(config: pytest.Config) -> None:
    """pgserver logs from an exit hook, after pytest closed the streams it captured: silence it."""
    import logging

    logging.getLogger("pgserver").disabled = True


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip tests that need ../shared when it is absent (a user's machine)."""
    if SHARED_SNAPSHOT.is_dir():
        return
    skip = pytest.mark.skip(reason="../shared/hub-snapshot is absent")
    for item in items:
        if "shared_snapshot" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def session_id() -> str:
    """Short random id that names this session's databases and roles."""
    return uuid.uuid4().hex[:10]


def embedded_data_dir() -> Path:
    """A fresh folder for an embedded Postgres, outside pytest's temporary root.

    As root, pgserver runs Postgres as its own user and opens the folders above the data
    directory to it (o+x); every pytest session resets its root (``/tmp/pytest-of-<user>``) to
    0700, so a second test session running beside this one would lock Postgres out.
    """
    folder = Path(tempfile.mkdtemp(prefix="dynosaur-test-pg-"))
    atexit.register(shutil.rmtree, folder, True)
    return folder


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """URL of a Postgres server's maintenance database (``postgres``) for this session."""
    url = os.environ.get("DYNOSAUR_TEST_DATABASE_URL")
    if url:
        yield url
        return
    from dynosaur.store.embedded import embedded_url, stop_embedded

    pgdata = embedded_data_dir() / "data"
    yield embedded_url(pgdata)
    dispose_engines()
    stop_embedded(pgdata)


class DatabaseFactory:
    """Creates throwaway databases on a server and drops them at the end of the session."""

    def __init__(self, server_url: str, session_id: str) -> None:
        self.server = sqlalchemy_url(server_url)
        self.session_id = session_id
        self.created: list[str] = []
        self._admin = sa.create_engine(
            self.server, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool
        )

    def create(self, label: str = "db") -> str:
        """Create an empty database and return its URL."""
        name = f"dynosaur_test_{self.session_id}_{label}_{len(self.created)}"
        with self._admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return self.server.set(database=name).render_as_string(hide_password=False)

    def drop_all(self, roles: list[str]) -> None:
        dispose_engines()
        with self._admin.connect() as conn:
            for name in self.created:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            for role in roles:
                conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{role}"')
        self._admin.dispose()


@pytest.fixture(scope="session")
def reader_role(session_id: str) -> str:
    """The read-only role name for this session (roles are cluster-wide, so it is unique)."""
    return f"dynosaur_reader_{session_id}"


@pytest.fixture(scope="session")
def databases(pg_server_url: str, session_id: str, reader_role: str) -> Iterator[DatabaseFactory]:
    """Factory of fresh databases, all dropped (with the session's roles) at the end."""
    factory = DatabaseFactory(pg_server_url, session_id)
    yield factory
    factory.drop_all([reader_role])


@pytest.fixture(scope="session")
def database_url(databases: DatabaseFactory) -> str:
    """The session's shared store database (migrated once by `engine`)."""
    return databases.create("store")


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder for the session (never the user's own)."""
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="session")
def base_settings(database_url: str, reader_role: str, data_dir: Path) -> Settings:
    """Settings pointing at the session's database, with no network endpoints configured."""
    return Settings(
        database_url=database_url,
        reader_role=reader_role,
        data_dir=data_dir,
        hub_endpoint="http://127.0.0.1:9",
        viewer_url="http://127.0.0.1:9",
        llm_base_url="http://127.0.0.1:9/v1",
        llm_api_key=None,
        hub_token=None,
        benchmarks=[],  # decontamination is tested where a test lists its benchmarks
    )


@pytest.fixture
def settings(base_settings: Settings) -> Settings:
    """A per-test copy of the session settings (tests may change fields freely)."""
    return base_settings.model_copy(deep=True)


@pytest.fixture(scope="session")
def engine(base_settings: Settings) -> Engine:
    """The session's migrated store."""
    return open_store(base_settings)


@pytest.fixture
def store(engine: Engine) -> Engine:
    """The migrated store, emptied of data before the test."""
    with engine.begin() as conn:
        conn.exec_driver_sql(f"TRUNCATE {', '.join(DATA_TABLES)} RESTART IDENTITY CASCADE")
    return engine


@pytest.fixture
def hub_emulator() -> Iterator[HubEmulator]:
    """A running Hub + Dataset Viewer emulator serving the project's own snapshot (real now)."""
    from dynosaur.emulators.hub import HubEmulator

    with HubEmulator() as hub:
        yield hub


@pytest.fixture
def llm_emulator() -> Iterator[LLMEmulator]:
    """A running LLM emulator that derives tasks from the prompt (no reference file, no faults)."""
    from dynosaur.emulators.llm import LLMEmulator

    with LLMEmulator() as llm:
        yield llm


# --- Helpers shared by test modules -------------------------------------------------------------


def count_rows(engine: Engine, tables: tuple[str, ...] = DATA_TABLES) -> dict[str, int]:
    """Rows per table: compared before and after a run that must add nothing."""
    with engine.connect() as conn:
        return {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one() for t in tables}


def pointed_at(settings: Settings, hub: HubEmulator, llm: LLMEmulator) -> Settings:
    """``settings`` with the Hub, the Dataset Viewer and the LLM served by the emulators."""
    return settings.model_copy(
        update={
            "hub_endpoint": hub.url,
            "viewer_url": hub.url,
            "llm_base_url": llm.base_url,
            "llm_api_key": SecretStr("sk-test"),
        }
    )


def command_env(**extra: str) -> dict[str, str]:
    """The environment of a command a test starts: this process's, without any ``AIRFLOW*`` or
    ``DYNOSAUR_*`` variable (never the user's settings or Airflow home), plus ``extra``."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "DYNOSAUR_"))}
    return {**keep, **extra}
