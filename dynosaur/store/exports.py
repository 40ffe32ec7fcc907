"""The export repository: where exported rows come from, version N of the collection or a stored
selection.

Both are one SQL query over a view with the same columns, read through a server-side cursor in
fixed-size batches, so an export's memory does not depend on the size of what it exports.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dynosaur.errors import UsageError
from dynosaur.store.batches import latest_version

# The original Dynosaur's instance fields, in its order: what every export format carries.
# `taskname` is the original's name for the instance's source (the `source` column: the dataset
# id, plus `-<config>` for datasets with several configs); exports keep the original's key so
# that files made by Dynosaur's own tools and by this service read the same.
FIELDS = ("instruction", "input", "output", "license", "website", "taskname")
_COLUMNS = "instruction, input, output, license, website, source AS taskname"
# Read with them (for the dataset card), never written.
_EXTRA = "dataset_id, task_id"
BATCH_ROWS = 10_000


@dataclass(frozen=True)
class RowSource:
    """A query over ``collection`` or ``selected_instance`` and a name for what it holds."""

    name: str
    description: str
    sql: str
    params: dict[str, Any] = field(default_factory=dict)
    version: int | None = None
    selection: str | None = None


def version_source(engine: Engine, version: int | None = None) -> RowSource:
    """Version N of the collection (default: the latest), in instance order."""
    latest = latest_version(engine)
    if latest is None:
        raise UsageError("nothing is published yet: there is no version to export")
    version = latest if version is None else version
    if not 1 <= version <= latest:
        raise UsageError(f"version {version} does not exist (the latest is {latest})")
    return RowSource(
        name=f"dynosaur-v{version}",
        description=f"version {version} of the collection",
        sql=(
            f"SELECT {_COLUMNS}, {_EXTRA} FROM collection "
            "WHERE version <= :version ORDER BY instance_id"
        ),
        params={"version": version},
        version=version,
    )


def selection_source(engine: Engine, name: str) -> RowSource:
    """The instances of the stored selection ``name``, best rank first."""
    with engine.connect() as conn:
        exists = conn.execute(
            sa.text("SELECT to_regclass('selected_instance') IS NOT NULL")
        ).scalar_one()
        version = None
        if exists:
            version = conn.execute(
                sa.text("SELECT max(version) FROM selected_instance WHERE selection_name = :n"),
                {"n": name},
            ).scalar_one()
    if not exists:
        raise UsageError("this store has no selections (the selected_instance view is missing)")
    if version is None:
        raise UsageError(f"there is no selection named {name!r} (or it is empty)")
    return RowSource(
        name=f"dynosaur-{name}",
        description=f"selection {name!r} (of collection version {version})",
        sql=(
            f"SELECT {_COLUMNS}, {_EXTRA} FROM selected_instance "
            "WHERE selection_name = :name ORDER BY rank NULLS LAST, instance_id"
        ),
        params={"name": name},
        version=version,
        selection=name,
    )


def count_rows(engine: Engine, source: RowSource) -> int:
    """How many rows the source holds (for progress bars)."""
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text(f"SELECT count(*) FROM ({source.sql}) AS s"), source.params
            ).scalar_one()
        )


def iter_batches(
    engine: Engine, source: RowSource, batch_rows: int = BATCH_ROWS
) -> Iterator[list[sa.Row[Any]]]:
    """The source's rows in batches of ``batch_rows``, from a server-side cursor; each row has
    the attributes of :data:`FIELDS` plus ``dataset_id`` and ``task_id``."""
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=batch_rows).execute(
            sa.text(source.sql), source.params
        )
        for part in result.partitions(batch_rows):
            yield list(part)
