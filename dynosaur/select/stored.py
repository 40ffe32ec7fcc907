"""Stored selections: a named subset of version N with how it was made, and its members.

A selection is identified by its name. Its inputs (method, source version, parameters, models,
seed) are hashed: asking again for the same name with the same inputs is a no-op that returns the
stored selection; with different inputs it is an error unless ``replace`` is given.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dynosaur.select.pool import SelectionError

Method = Literal[
    "coreset",
    "learning_percentage",
    "random_per_cluster",
    "replay_instruction",
    "replay_random",
    "replay_data",
]
Role = Literal["selected", "current", "replay"]
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


@dataclass(frozen=True)
class SelectionSpec:
    """Everything that determines a selection's members."""

    name: str
    method: Method
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

    kind: Literal["instance", "task"]
    ids: np.ndarray
    roles: list[Role]
    ranks: list[int | None]
    scores: np.ndarray

    @classmethod
    def ranked(
        cls, kind: Literal["instance", "task"], ids: np.ndarray, scores: np.ndarray, role: Role
    ) -> Members:
        """Members ranked 1..n in the order given."""
        return cls(kind, np.asarray(ids), [role] * len(ids), list(range(1, len(ids) + 1)), scores)

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


_SUMMARY_SQL = """
SELECT v.selection_name, v.method, v.version, v.parameters, v.models, v.seed, v.pool_size,
       v.instances_selected, v.tasks_selected, v.instances, v.created_at, s.figures
FROM selection_summary v JOIN selection s ON s.name = v.selection_name
"""


def _stored(row: sa.Row[Any], reused: bool = False) -> StoredSelection:
    return StoredSelection(*row, reused=reused)


def get_selection(engine: Engine, name: str) -> StoredSelection | None:
    """The stored selection called ``name``, or None."""
    with engine.connect() as conn:
        row = conn.execute(sa.text(_SUMMARY_SQL + " WHERE s.name = :n"), {"n": name}).first()
    return _stored(row) if row else None


def list_selections(engine: Engine) -> list[StoredSelection]:
    """Every stored selection, newest first."""
    with engine.connect() as conn:
        rows = conn.execute(sa.text(_SUMMARY_SQL + " ORDER BY s.created_at DESC, s.id DESC")).all()
    return [_stored(r) for r in rows]


def existing(engine: Engine, spec: SelectionSpec, *, replace: bool) -> StoredSelection | None:
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
    return StoredSelection(**{**found.__dict__, "reused": True}) if found else None


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
    if selection_id is None:  # another process stored the same name meanwhile
        reused = existing(engine, spec, replace=False)
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
                "JOIN selection s ON s.id = m.selection_id WHERE s.name = :n "
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
