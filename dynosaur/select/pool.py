"""What a selection reads from the store: the pool of version N, texts, and cached embeddings.

Version N of the collection is every instance of a published batch whose version is <= N. Reads
return numpy arrays of ids in id order (stable, so a seeded selection is reproducible). Cached
vectors are written with binary COPY through a temporary table, so concurrent runs that embed
the same rows do not collide.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dynosaur.errors import DynosaurError
from dynosaur.progress import NullProgress, Progress

Kind = Literal["instance", "task"]
_TEXT_CHUNK = 2048
_UNCATEGORISED = "uncategorised"


class SelectionError(DynosaurError):
    """A selection cannot be made or stored as asked (unknown version, name clash...)."""


@dataclass(frozen=True)
class InstancePool:
    """The instances of version N (optionally of one task category), in id order."""

    version: int
    instance_id: np.ndarray
    task_id: np.ndarray
    batch_id: np.ndarray
    category: list[str]

    def __len__(self) -> int:
        return len(self.instance_id)


@dataclass(frozen=True)
class TaskPool:
    """Valid tasks of published batches up to version N, with their batch's version."""

    task_id: np.ndarray
    version: np.ndarray
    instruction: list[str]

    def __len__(self) -> int:
        return len(self.task_id)


def latest_version(engine: Engine) -> int | None:
    """The newest published version, or None when nothing is published."""
    with engine.connect() as conn:
        return conn.execute(
            sa.text("SELECT max(version) FROM batch WHERE status = 'published'")
        ).scalar()


def check_version(engine: Engine, version: int) -> None:
    """Raise :class:`SelectionError` unless ``version`` is published."""
    with engine.connect() as conn:
        found = conn.execute(
            sa.text("SELECT 1 FROM batch WHERE status = 'published' AND version = :v"),
            {"v": version},
        ).first()
    if found is None:
        latest = latest_version(engine)
        shown = f"the latest is {latest}" if latest else "nothing is published yet"
        raise SelectionError(f"version {version} of the collection is not published ({shown})")


_POOL_SQL = """
SELECT i.id, i.task_id, i.batch_id, coalesce(d.task_categories[1], :none) AS category
FROM instance i
JOIN batch b          ON b.id = i.batch_id AND b.status = 'published' AND b.version <= :v
JOIN task t           ON t.id = i.task_id
JOIN dataset_config c ON c.id = t.config_id
JOIN hub_dataset d    ON d.id = c.hub_dataset_id
WHERE (CAST(:cat AS text) IS NULL OR :cat = ANY(d.task_categories))
  AND (CAST(:batch AS bigint) IS NULL OR i.batch_id = :batch)
ORDER BY i.id
"""


def instance_pool(
    engine: Engine, version: int, *, category: str | None = None, batch_id: int | None = None
) -> InstancePool:
    """Instances of version N; a task category (first one on the card) labels each."""
    check_version(engine, version)
    params = {"v": version, "cat": category, "batch": batch_id, "none": _UNCATEGORISED}
    with engine.connect() as conn:
        rows = conn.execute(sa.text(_POOL_SQL), params).all()
    return InstancePool(
        version=version,
        instance_id=np.array([r[0] for r in rows], dtype=np.int64),
        task_id=np.array([r[1] for r in rows], dtype=np.int64),
        batch_id=np.array([r[2] for r in rows], dtype=np.int64),
        category=[r[3] for r in rows],
    )


def task_pool(engine: Engine, version: int) -> TaskPool:
    """Valid tasks with at least one instance in version N, in id order."""
    check_version(engine, version)
    sql = sa.text(
        "SELECT t.id, b.version, t.instruction FROM task t "
        "JOIN batch b ON b.id = t.batch_id AND b.status = 'published' AND b.version <= :v "
        "WHERE t.status = 'valid' AND EXISTS (SELECT 1 FROM instance i WHERE i.task_id = t.id) "
        "ORDER BY t.id"
    )
    with engine.connect() as conn:
        rows = conn.execute(sql, {"v": version}).all()
    return TaskPool(
        task_id=np.array([r[0] for r in rows], dtype=np.int64),
        version=np.array([r[1] for r in rows], dtype=np.int64),
        instruction=[r[2] for r in rows],
    )


def batch_of_version(engine: Engine, version: int) -> int:
    """Id of the batch published as ``version``."""
    check_version(engine, version)
    with engine.connect() as conn:
        return conn.execute(
            sa.text("SELECT id FROM batch WHERE status = 'published' AND version = :v"),
            {"v": version},
        ).scalar_one()


def instance_fields(engine: Engine, ids: Sequence[int]) -> list[tuple[str, str, str]]:
    """(instruction, input, output) of each instance, in the order of ``ids``."""
    out: list[tuple[str, str, str]] = []
    sql = sa.text(
        "SELECT i.instruction, i.input, i.output FROM unnest(CAST(:ids AS bigint[])) "
        "WITH ORDINALITY AS w(id, n) JOIN instance i ON i.id = w.id ORDER BY w.n"
    )
    with engine.connect() as conn:
        for start in range(0, len(ids), _TEXT_CHUNK):
            chunk = [int(x) for x in ids[start : start + _TEXT_CHUNK]]
            rows = conn.execute(sql, {"ids": chunk}).all()
            if len(rows) != len(chunk):
                raise SelectionError("some instances of the pool disappeared from the store")
            out.extend((r[0], r[1], r[2]) for r in rows)
    return out


def _table(kind: Kind) -> tuple[str, str]:
    return (
        ("instance_embedding", "instance_id")
        if kind == "instance"
        else ("task_embedding", "task_id")
    )


def load_vectors(engine: Engine, kind: Kind, model: str, ids: np.ndarray) -> dict[int, np.ndarray]:
    """Stored vectors of ``model`` for the ``ids`` that have one."""
    table, column = _table(kind)
    sql = sa.text(
        f"SELECT {column}, vector FROM {table} "
        f"WHERE model = :m AND {column} = ANY(CAST(:ids AS bigint[]))"
    )
    with engine.connect() as conn:
        rows = conn.execute(sql, {"m": model, "ids": [int(x) for x in ids]}).all()
    return {int(r[0]): np.frombuffer(r[1], dtype="<f4") for r in rows}


def save_vectors(
    engine: Engine, kind: Kind, model: str, ids: np.ndarray, vectors: np.ndarray
) -> int:
    """Store vectors (binary COPY); rows already stored are kept. Returns rows added."""
    if len(ids) == 0:
        return 0
    table, column = _table(kind)
    payload = _copy_payload(model, ids, np.ascontiguousarray(vectors, dtype="<f4"))
    with engine.begin() as conn:
        conn.exec_driver_sql(
            f"CREATE TEMP TABLE incoming (model text, {column} bigint, vector bytea) ON COMMIT DROP"
        )
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        cursor.copy_expert(
            f"COPY incoming (model, {column}, vector) FROM STDIN WITH (FORMAT binary)", payload
        )
        added = conn.exec_driver_sql(
            f"INSERT INTO {table} (model, {column}, vector) "
            f"SELECT model, {column}, vector FROM incoming ON CONFLICT DO NOTHING"
        ).rowcount
    return int(added)


def _copy_payload(model: str, ids: np.ndarray, vectors: np.ndarray) -> io.BytesIO:
    """A COPY binary stream of (model text, id bigint, vector bytea) rows."""
    name = model.encode()
    head = struct.pack(">hi", 3, len(name)) + name + struct.pack(">i", 8)
    size = vectors.shape[1] * 4
    buf = io.BytesIO()
    buf.write(b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0))
    for item, vector in zip(ids, vectors, strict=True):
        buf.write(head)
        buf.write(struct.pack(">q", int(item)))
        buf.write(struct.pack(">i", size))
        buf.write(vector.tobytes())
    buf.write(struct.pack(">h", -1))
    buf.seek(0)
    return buf


def ensure_vectors(
    engine: Engine,
    kind: Kind,
    ids: np.ndarray,
    *,
    model: str,
    encode: Callable[[Sequence[str], Progress], np.ndarray],
    texts: Callable[[np.ndarray], list[str]],
    progress: Progress | None = None,
    chunk: int = 4096,
) -> tuple[np.ndarray, int]:
    """Vectors for ``ids`` (in order): stored ones loaded, missing ones embedded and stored.

    Missing rows are embedded and saved chunk by chunk, so an interrupted run keeps its work.
    Returns (matrix [len(ids), dim], number newly embedded).
    """
    progress = progress or NullProgress()
    known = load_vectors(engine, kind, model, ids)
    missing = np.array([i for i in ids if int(i) not in known], dtype=np.int64)
    progress.start(len(missing), f"embedding {kind}s ({model.rsplit('/', 1)[-1]})")
    for start in range(0, len(missing), chunk):
        part = missing[start : start + chunk]
        vectors = encode(texts(part), progress)
        save_vectors(engine, kind, model, part, vectors)
        known.update((int(i), v) for i, v in zip(part, vectors, strict=True))
    progress.finish()
    if not len(ids):
        return np.zeros((0, 0), dtype=np.float32), 0
    return np.stack([known[int(i)] for i in ids]).astype(np.float32, copy=False), len(missing)
