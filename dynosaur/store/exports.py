"""The export repository: where exported rows come from, version N of the collection (whole, or
the delta one publish added), or a stored selection, optionally restricted to license classes.

Each is one SQL query over the ``collection`` view read once through a server-side cursor in
fixed-size batches: an export's memory does not depend on its size, and nothing is read twice
(sizes shown in advance come from figures stored at publish or selection time).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
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
_EXTRA = "dataset_id, task_id, license_class"
BATCH_ROWS = 10_000


@dataclass(frozen=True)
class RowSource:
    """A query over ``collection`` and a name for what it holds.

    ``expected`` is how many rows it holds when the store already knows (stored figures), for
    progress bars; None when only reading it would tell (the export counts as it streams).
    """

    name: str
    description: str
    sql: str
    params: dict[str, Any] = field(default_factory=dict)
    version: int | None = None
    selection: str | None = None
    delta: bool = False
    license_classes: tuple[str, ...] = ()
    expected: int | None = None


def _license_filter(classes: Sequence[str]) -> str:
    return " AND license_class = ANY(CAST(:classes AS text[]))" if classes else ""


def version_source(
    engine: Engine,
    version: int | None = None,
    *,
    delta: bool = False,
    license_classes: Sequence[str] = (),
) -> RowSource:
    """Version N of the collection (default: the latest), in instance order; with ``delta``,
    only the rows version N added (its batch); with ``license_classes``, only rows whose
    license falls in one of those classes."""
    latest = latest_version(engine)
    if latest is None:
        raise UsageError("nothing is published yet: there is no version to export")
    version = latest if version is None else version
    if not 1 <= version <= latest:
        raise UsageError(f"version {version} does not exist (the latest is {latest})")
    classes = tuple(license_classes)
    suffix = f"-{'+'.join(classes)}" if classes else ""
    with engine.connect() as conn:
        expected = conn.execute(
            sa.text(
                "SELECT sum((figures->>'instances')::bigint) FROM batch "
                "WHERE status = 'published' AND " + ("version = :v" if delta else "version <= :v")
            ),
            {"v": version},
        ).scalar()
    what = f"the rows version {version} added" if delta else f"version {version} of the collection"
    if classes:
        what += f" (licenses: {', '.join(classes)})"
    return RowSource(
        name=f"dynosaur-v{version}{'-delta' if delta else ''}{suffix}",
        description=what,
        sql=(
            f"SELECT {_COLUMNS}, {_EXTRA} FROM collection "
            f"WHERE version {'=' if delta else '<='} :version{_license_filter(classes)} "
            "ORDER BY instance_id"
        ),
        params={"version": version, "classes": list(classes)},
        version=version,
        delta=delta,
        license_classes=classes,
        expected=None if classes or expected is None else int(expected),
    )


# A selection's instances: its instance members, and every instance of its task members, read by
# the selection's id (index scans of its own members only), then their collection rows by id.
_SELECTION_SQL = f"""
SELECT {_COLUMNS}, {_EXTRA}
FROM (
    SELECT m.instance_id, m.rank FROM selection_member m
    WHERE m.selection_id = :selection AND m.instance_id IS NOT NULL
    UNION ALL
    SELECT i.id, m.rank FROM selection_member m JOIN instance i ON i.task_id = m.task_id
    WHERE m.selection_id = :selection AND m.task_id IS NOT NULL
) AS mi
JOIN collection c ON c.instance_id = mi.instance_id
WHERE true{{licenses}}
ORDER BY mi.rank NULLS LAST, mi.instance_id
"""


def selection_source(
    engine: Engine, name: str, *, license_classes: Sequence[str] = ()
) -> RowSource:
    """The instances of the stored selection ``name``, best rank first (only those whose
    license falls in ``license_classes`` when given)."""
    with engine.connect() as conn:
        row = conn.execute(
            sa.text(
                "SELECT id, version, instances, EXISTS (SELECT 1 FROM selection_member m "
                "WHERE m.selection_id = s.id) AS members FROM selection s WHERE name = :n"
            ),
            {"n": name},
        ).first()
    if row is None or not row.members:
        raise UsageError(f"there is no selection named {name!r} (or it is empty)")
    classes = tuple(license_classes)
    suffix = f"-{'+'.join(classes)}" if classes else ""
    what = f"selection {name!r} (of collection version {row.version})"
    if classes:
        what += f" (licenses: {', '.join(classes)})"
    return RowSource(
        name=f"dynosaur-{name}{suffix}",
        description=what,
        sql=_SELECTION_SQL.replace("{licenses}", _license_filter(classes)),
        params={"selection": row.id, "classes": list(classes)},
        version=row.version,
        selection=name,
        license_classes=classes,
        expected=None if classes or not row.instances else int(row.instances),
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
