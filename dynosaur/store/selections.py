"""The selection repository: pools of version N, cached embeddings, perplexity traces, and stored
selections with their members.

Version N of the collection is every instance of a published batch whose version is <= N. Pool
reads return numpy arrays of ids in id order (stable, so a seeded selection is reproducible).
Cached vectors are written with binary COPY through a temporary table, so concurrent runs that
embed the same rows do not collide.

A selection is identified by its name. Its inputs (method, source version, parameters, models,
seed) are hashed: asking again for the same name with the same inputs finds the stored selection;
with different inputs it is an error unless ``replace`` is given.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dynosaur.errors import SelectionError
from dynosaur.store.batches import latest_version

Kind = Literal["instance", "task"]
MethodName = Literal[
    "coreset",
    "learning_percentage",
    "random_per_cluster",
    "replay_instruction",
    "replay_random",
    "replay_data",
]
Role = Literal["selected", "current", "replay"]
UNCATEGORISED = "uncategorised"
_TEXT_CHUNK = 2048
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


# --- pools ------------------------------------------------------------------------------------


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
ORDER BY i.id
"""


def instance_pool(engine: Engine, version: int, *, category: str | None = None) -> InstancePool:
    """Instances of version N; a task category (first one on the card) labels each."""
    check_version(engine, version)
    params = {"v": version, "cat": category, "none": UNCATEGORISED}
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


def instance_fields(engine: Engine, ids: Sequence[int] | np.ndarray) -> list[tuple[str, str, str]]:
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


# --- cached embeddings ------------------------------------------------------------------------


def _vector_table(kind: Kind) -> tuple[str, str]:
    return (
        ("instance_embedding", "instance_id")
        if kind == "instance"
        else ("task_embedding", "task_id")
    )


def load_vectors(engine: Engine, kind: Kind, model: str, ids: np.ndarray) -> dict[int, np.ndarray]:
    """Stored vectors of ``model`` for the ``ids`` that have one."""
    table, column = _vector_table(kind)
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
    table, column = _vector_table(kind)
    payload = _copy_payload(model, ids, np.ascontiguousarray(vectors, dtype="<f4"))
    with engine.begin() as conn:
        conn.exec_driver_sql(
            f"CREATE TEMP TABLE incoming (model text, {column} bigint, vector bytea) ON COMMIT DROP"
        )
        raw: Any = conn.connection.dbapi_connection  # psycopg2's connection
        with raw.cursor() as cursor:
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


# --- perplexity traces ------------------------------------------------------------------------


def load_traces(
    engine: Engine, run_key: str, instance_ids: np.ndarray, epochs: int
) -> np.ndarray | None:
    """Traces [instances, P0..P{epochs}] of ``instance_ids`` (in that order) from a stored scoring
    run keyed ``run_key`` with at least ``epochs`` epochs; None when there is none.

    A run that lost instances (they were removed from the store) is deleted on the way.
    """
    with engine.begin() as conn:
        runs = conn.execute(
            sa.text(
                "SELECT id, (parameters->>'epochs')::int AS epochs, instances FROM scoring_run "
                "WHERE key LIKE :k ORDER BY (parameters->>'epochs')::int"
            ),
            {"k": run_key + "/e%"},
        ).all()
        for run_id, run_epochs, instances in runs:
            if run_epochs < epochs:
                continue
            rows = conn.execute(
                sa.text(
                    "SELECT instance_id, perplexities FROM perplexity_trace "
                    "WHERE scoring_run_id = :r"
                ),
                {"r": run_id},
            ).all()
            if len(rows) != instances or instances != len(instance_ids):
                # Incomplete (its instances were removed): forget it and score again.
                conn.execute(sa.text("DELETE FROM scoring_run WHERE id = :r"), {"r": run_id})
                continue
            by_id = {int(r[0]): r[1] for r in rows}
            return np.array([by_id[int(i)][: epochs + 1] for i in instance_ids], dtype=np.float64)
    return None


def save_traces(
    engine: Engine,
    run_key: str,
    *,
    scorer: str,
    version: int,
    parameters: dict[str, Any],
    device: str,
    instance_ids: np.ndarray,
    traces: np.ndarray,
    seconds: float,
) -> None:
    """Store a scoring run (``run_key`` + ``/e<epochs>``) and its traces; a run already stored
    under that key is kept."""
    with engine.begin() as conn:
        run_id = conn.execute(
            sa.text(
                "INSERT INTO scoring_run (key, scorer, version, parameters, device, instances, "
                "seconds) VALUES (:k, :s, :v, :p, :d, :n, :t) "
                "ON CONFLICT (key) DO NOTHING RETURNING id"
            ),
            {
                "k": f"{run_key}/e{parameters['epochs']}",
                "s": scorer,
                "v": version,
                "p": json.dumps(parameters),
                "d": device,
                "n": len(instance_ids),
                "t": seconds,
            },
        ).scalar()
        if run_id is not None:
            conn.execute(
                sa.text(
                    "INSERT INTO perplexity_trace (scoring_run_id, instance_id, perplexities) "
                    "VALUES (:r, :i, :p)"
                ),
                [
                    {"r": run_id, "i": int(i), "p": [float(x) for x in row]}
                    for i, row in zip(instance_ids, traces, strict=True)
                ],
            )


# --- stored selections ------------------------------------------------------------------------


@dataclass(frozen=True)
class SelectionSpec:
    """Everything that determines a selection's members."""

    name: str
    method: MethodName
    version: int
    parameters: dict[str, Any]
    models: dict[str, str]
    seed: int

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise SelectionError(
                f"invalid selection name {self.name!r}: letters, digits, '.', '_' and '-', "
                "starting with a letter or digit, at most 128 characters"
            )

    def inputs_hash(self) -> str:
        """Fingerprint of the inputs (not the name)."""
        blob = json.dumps(
            [self.method, self.version, self.parameters, self.models, self.seed],
            sort_keys=True,
            separators=(",", ":"),
        )
        return hashlib.sha256(blob.encode()).hexdigest()


@dataclass(frozen=True)
class Members:
    """Selected rows: instance ids or task ids, with a role, rank and score each."""

    kind: Kind
    ids: np.ndarray
    roles: list[Role]
    ranks: list[int | None]
    scores: np.ndarray

    @classmethod
    def ranked(cls, kind: Kind, ids: np.ndarray, scores: np.ndarray, role: Role) -> Members:
        """Members ranked 1..n in the order given."""
        return cls(kind, np.asarray(ids), [role] * len(ids), list(range(1, len(ids) + 1)), scores)

    @classmethod
    def unranked(cls, kind: Kind, ids: np.ndarray, role: Role) -> Members:
        """Members without rank or score (e.g. the new batch's own tasks in a replay set)."""
        return cls(
            kind, np.asarray(ids), [role] * len(ids), [None] * len(ids), np.full(len(ids), np.nan)
        )

    def __add__(self, other: Members) -> Members:
        if self.kind != other.kind:
            raise ValueError("cannot mix instance and task members")
        return Members(
            self.kind,
            np.concatenate([self.ids, other.ids]),
            self.roles + other.roles,
            self.ranks + other.ranks,
            np.concatenate([self.scores, other.scores]),
        )


@dataclass(frozen=True)
class StoredSelection:
    """A selection as stored (what `dynosaur select list` shows)."""

    name: str
    method: str
    version: int
    parameters: dict[str, Any]
    models: dict[str, str]
    seed: int
    pool_size: int
    instances_selected: int
    tasks_selected: int
    instances: int
    created_at: datetime
    figures: dict[str, Any] = field(default_factory=dict)
    reused: bool = False


# Every figure is a column of `selection` (counted once when the selection is stored): reading
# one selection is one index lookup, listing them reads their rows only.
_SUMMARY_SQL = """
SELECT s.name AS selection_name, s.method, s.version, s.parameters, s.models, s.seed, s.pool_size,
       s.instances_selected, s.tasks_selected, s.instances, s.created_at, s.figures
FROM selection s
"""


def _stored(row: sa.Row[Any]) -> StoredSelection:
    return StoredSelection(
        name=row.selection_name,
        method=row.method,
        version=row.version,
        parameters=row.parameters,
        models=row.models,
        seed=row.seed,
        pool_size=row.pool_size,
        instances_selected=row.instances_selected,
        tasks_selected=row.tasks_selected,
        instances=row.instances,
        created_at=row.created_at,
        figures=row.figures,
    )


def get_selection(engine: Engine, name: str) -> StoredSelection | None:
    """The stored selection called ``name``, or None."""
    with engine.connect() as conn:
        row = conn.execute(sa.text(_SUMMARY_SQL + " WHERE s.name = :n"), {"n": name}).first()
    return _stored(row) if row else None


def list_selections(engine: Engine, *, limit: int | None = None) -> list[StoredSelection]:
    """Stored selections, newest first (the newest ``limit`` of them when given)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(_SUMMARY_SQL + " ORDER BY s.created_at DESC, s.id DESC LIMIT :n"),
            {"n": limit},
        ).all()
    return [_stored(r) for r in rows]


def reusable_selection(
    engine: Engine, spec: SelectionSpec, *, replace: bool
) -> StoredSelection | None:
    """The stored selection to reuse for ``spec``, None when it must be (re)computed.

    Raises :class:`SelectionError` when the name holds a selection made from other inputs and
    ``replace`` is not set.
    """
    with engine.connect() as conn:
        stored_hash = conn.execute(
            sa.text("SELECT inputs_hash FROM selection WHERE name = :n"), {"n": spec.name}
        ).scalar()
    if stored_hash is None or (replace and stored_hash != spec.inputs_hash()):
        return None
    if stored_hash != spec.inputs_hash():
        raise SelectionError(
            f"a selection named {spec.name!r} already exists, made from other inputs; "
            "choose another name or pass --replace"
        )
    found = get_selection(engine, spec.name)
    return dataclasses.replace(found, reused=True) if found else None


def save_selection(
    engine: Engine,
    spec: SelectionSpec,
    members: Members,
    *,
    pool_size: int,
    figures: dict[str, Any],
    replace: bool,
) -> StoredSelection:
    """Store ``spec`` and its members in one transaction (replacing a same-named one if asked)."""
    column = "instance_id" if members.kind == "instance" else "task_id"
    with engine.begin() as conn:
        if replace:
            conn.execute(sa.text("DELETE FROM selection WHERE name = :n"), {"n": spec.name})
        selection_id = conn.execute(
            sa.text(
                "INSERT INTO selection (name, method, parameters, version, models, seed, "
                "inputs_hash, pool_size, figures) VALUES (:name, :method, :parameters, :version, "
                ":models, :seed, :hash, :pool, :figures) "
                "ON CONFLICT (name) DO NOTHING RETURNING id"
            ),
            {
                "name": spec.name,
                "method": spec.method,
                "parameters": json.dumps(spec.parameters),
                "version": spec.version,
                "models": json.dumps(spec.models),
                "seed": spec.seed,
                "hash": spec.inputs_hash(),
                "pool": pool_size,
                "figures": json.dumps(figures),
            },
        ).scalar()
        if selection_id is not None and len(members.ids):
            conn.execute(
                sa.text(
                    f"INSERT INTO selection_member (selection_id, {column}, role, rank, score) "
                    "VALUES (:s, :item, :role, :rank, :score)"
                ),
                [
                    {
                        "s": selection_id,
                        "item": int(item),
                        "role": role,
                        "rank": rank,
                        "score": None if not np.isfinite(score) else float(score),
                    }
                    for item, role, rank, score in zip(
                        members.ids, members.roles, members.ranks, members.scores, strict=True
                    )
                ],
            )
        if selection_id is not None:
            conn.execute(
                sa.text(
                    "UPDATE selection SET instances_selected = :instances, "
                    "tasks_selected = :tasks, instances = :instances + coalesce(("
                    "SELECT count(*) FROM selection_member m JOIN instance i "
                    "ON i.task_id = m.task_id WHERE m.selection_id = :s), 0) WHERE id = :s"
                ),
                {
                    "s": selection_id,
                    "instances": len(members.ids) if members.kind == "instance" else 0,
                    "tasks": len(members.ids) if members.kind == "task" else 0,
                },
            )
    if selection_id is None:  # another process stored the same name meanwhile
        reused = reusable_selection(engine, spec, replace=False)
        if reused is None:
            raise SelectionError(f"selection {spec.name!r} vanished while it was being stored")
        return reused
    stored = get_selection(engine, spec.name)
    assert stored is not None
    return stored


def member_ids(engine: Engine, name: str) -> list[tuple[int | None, int | None, str, int | None]]:
    """(instance_id, task_id, role, rank) of a selection's members, in rank order."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT m.instance_id, m.task_id, m.role, m.rank FROM selection_member m "
                "WHERE m.selection_id = (SELECT id FROM selection WHERE name = :n) "
                "ORDER BY m.rank NULLS FIRST, m.instance_id, m.task_id"
            ),
            {"n": name},
        ).all()
    return [(r[0], r[1], r[2], r[3]) for r in rows]


def drop_selection(engine: Engine, name: str) -> bool:
    """Delete a stored selection; returns whether one existed."""
    with engine.begin() as conn:
        return bool(
            conn.execute(sa.text("DELETE FROM selection WHERE name = :n"), {"n": name}).rowcount
        )
