"""The main job: ``dynosaur demo`` as a user runs it (its own process), against the test server."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from dynosaur.errors import DynosaurError
from dynosaur.settings import Settings
from dynosaur.store.engine import recreate_database, sqlalchemy_url
from tests.conftest import command_env

pytestmark = pytest.mark.airflow


def test_the_demo_grows_three_versions_and_prints_the_summary(
    settings: Settings, tmp_path: Path
) -> None:
    name = f"dynosaur_demo_test_{uuid.uuid4().hex[:8]}"
    env = command_env(
        DYNOSAUR_DATABASE_URL=settings.database_url,
        DYNOSAUR_READER_ROLE=settings.reader_role,
        DYNOSAUR_DATA_DIR=str(tmp_path / "data"),
        COLUMNS="160",
    )
    dynosaur = Path(sys.executable).parent / "dynosaur"
    try:
        done = subprocess.run(
            [str(dynosaur), "demo", "--database", name],
            env=env, capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        out = done.stdout
        for day, version in (("2024-03-02", 1), ("2024-03-03", 2), ("2024-03-04", 3)):
            assert f"{day}: version {version}:" in out
        assert "outcome_by_reason" in out and "duplicate_in_store" in out
        assert "sql/queries/tasks_by_category.sql" in out
        assert "sql/queries/licenses_in_version.sql" in out
        demo = sa.create_engine(sqlalchemy_url(settings.database_url).set(database=name))
        with demo.connect() as conn:
            versions = (
                conn.execute(
                    sa.text("SELECT version FROM batch WHERE status = 'published' ORDER BY 1")
                )
                .scalars()
                .all()
            )
            instances = conn.execute(sa.text("SELECT count(*) FROM collection")).scalar_one()
        demo.dispose()
        assert versions == [1, 2, 3]
        # Version 3 is the deltas its manifest lists.
        exports = tmp_path / "data" / "demo" / "exports"
        listed = json.loads((exports / "v3" / "manifest.json").read_text())["formats"]["jsonl"]
        rows = sum(len((exports / f["path"]).read_text().splitlines()) for f in listed)
        assert [f["version"] for f in listed] == [1, 2, 3] and rows == instances > 0
    finally:
        admin = sa.create_engine(
            sqlalchemy_url(settings.database_url), isolation_level="AUTOCOMMIT"
        )
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def test_the_demo_refuses_to_recreate_the_store_itself(settings: Settings) -> None:
    own = sqlalchemy_url(settings.database_url).database
    with pytest.raises(DynosaurError, match="your store's own database"):
        recreate_database(settings, own)
    with pytest.raises(DynosaurError, match="plain database name"):
        recreate_database(settings, 'x"; DROP DATABASE postgres; --')
