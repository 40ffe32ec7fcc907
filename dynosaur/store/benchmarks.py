"""The benchmark index: indexed evaluation splits, their 13-gram hashes, and the instances curate
dropped for sharing one (``benchmark_match``).

A lookup is one primary-key probe per distinct hash of the batch (a few thousand hashes per
statement), so its cost follows the batch, not the index.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from dynosaur.store.copy import copy_lines


@dataclass(frozen=True)
class Benchmark:
    """One indexed evaluation split at one revision."""

    id: int
    dataset_id: str
    config_name: str
    split: str
    sha: str
    n_rows: int
    n_ngrams: int
    indexed_at: datetime
    checked_at: datetime | None = None

    @property
    def name(self) -> str:
        """``dataset:config:split``, as the setting spells it."""
        return f"{self.dataset_id}:{self.config_name}:{self.split}"


_COLUMNS = "id, dataset_id, config_name, split, sha, n_rows, n_ngrams, indexed_at, checked_at"


def find(engine: Engine, dataset_id: str, config_name: str, split: str, sha: str) -> int | None:
    """The id of this split indexed at revision ``sha``, if it is."""
    with engine.connect() as conn:
        return conn.execute(
            sa.text(
                "SELECT id FROM benchmark WHERE dataset_id = :d AND config_name = :c "
                "AND split = :s AND sha = :sha"
            ),
            {"d": dataset_id, "c": config_name, "s": split, "sha": sha},
        ).scalar_one_or_none()


def store_index(
    engine: Engine,
    dataset_id: str,
    config_name: str,
    split: str,
    sha: str,
    n_rows: int,
    hashes: Iterable[int],
) -> tuple[int, bool]:
    """Store a split's n-gram hashes at ``sha`` in one transaction, replacing the split's index
    at any older revision; returns (benchmark id, created). The same revision twice: nothing."""
    unique = sorted(set(hashes))
    with engine.begin() as conn:
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('dynosaur.benchmark'))"))
        row = conn.execute(
            sa.text(
                "INSERT INTO benchmark (dataset_id, config_name, split, sha, n_rows, n_ngrams) "
                "VALUES (:d, :c, :s, :sha, :r, :n) "
                "ON CONFLICT (dataset_id, config_name, split, sha) DO NOTHING RETURNING id"
            ),
            {
                "d": dataset_id,
                "c": config_name,
                "s": split,
                "sha": sha,
                "r": n_rows,
                "n": len(unique),
            },
        )
        new_id = row.scalar_one_or_none()
        if new_id is None:
            existing = conn.execute(
                sa.text(
                    "SELECT id FROM benchmark WHERE dataset_id = :d AND config_name = :c "
                    "AND split = :s AND sha = :sha"
                ),
                {"d": dataset_id, "c": config_name, "s": split, "sha": sha},
            ).scalar_one()
            return existing, False
        conn.execute(
            sa.text(
                "DELETE FROM benchmark WHERE dataset_id = :d AND config_name = :c "
                "AND split = :s AND id <> :id"
            ),
            {"d": dataset_id, "c": config_name, "s": split, "id": new_id},
        )
        copy_lines(
            conn,
            "benchmark_ngram",
            ("hash", "benchmark_id"),
            (f"{h}\t{new_id}\n" for h in unique),
        )
    return new_id, True


def benchmarks(engine: Engine) -> list[Benchmark]:
    """Every indexed split, by dataset, config and split."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(f"SELECT {_COLUMNS} FROM benchmark ORDER BY dataset_id, config_name, split")
        ).mappings()
        return [Benchmark(**row) for row in rows]


def has_index(conn: Connection) -> bool:
    """Whether any benchmark is indexed (curate skips the lookup when none is)."""
    return bool(conn.execute(sa.text("SELECT EXISTS (SELECT 1 FROM benchmark)")).scalar_one())


# Hashes per lookup statement (each an array literal of a few tens of KB).
LOOKUP_CHUNK = 5_000


def matching(
    conn: Connection, hashes: Sequence[int], among: Iterable[int] | None = None
) -> dict[int, int]:
    """hash -> the (lowest) id of a benchmark that has it, for the hashes that any has
    (``among``: only these benchmarks)."""
    wanted = sorted(among) if among is not None else None
    found: dict[int, int] = {}
    for start in range(0, len(hashes), LOOKUP_CHUNK):
        chunk = hashes[start : start + LOOKUP_CHUNK]
        rows = conn.execute(
            sa.text(
                # LATERAL: one primary-key probe per hash, whatever the table's size (a join
                # lets the planner hash the whole table when it is small, many times over).
                "SELECT q.hash, x.b FROM unnest(CAST(:h AS bigint[])) AS q (hash) "
                "CROSS JOIN LATERAL (SELECT min(n.benchmark_id) AS b FROM benchmark_ngram n "
                "WHERE n.hash = q.hash AND (CAST(:among AS integer[]) IS NULL "
                "OR n.benchmark_id = ANY(CAST(:among AS integer[])))) AS x "
                "WHERE x.b IS NOT NULL"
            ),
            # An array literal, not a list: psycopg2 would send ARRAY[...] with one expression
            # per element, which Postgres parses many times slower than the literal.
            {"h": "{" + ",".join(map(str, chunk)) + "}", "among": wanted},
        )
        found.update((r.hash, r.b) for r in rows)
    return found


def names(conn: Connection, ids: Iterable[int]) -> dict[int, str]:
    """benchmark id -> ``dataset:config:split``."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = conn.execute(
        sa.text(
            "SELECT id, dataset_id || ':' || config_name || ':' || split AS name "
            "FROM benchmark WHERE id = ANY(:ids)"
        ),
        {"ids": wanted},
    )
    return {r.id: r.name for r in rows}


@dataclass(frozen=True)
class Match:
    """An instance curate dropped: its task row, the side that matched and the benchmark."""

    task_id: int
    row_index: int
    side: str
    benchmark_id: int


def record_matches(conn: Connection, batch_id: int, matches: Sequence[Match]) -> None:
    """Remember the dropped instances (a re-curated row keeps its first record)."""
    if not matches:
        return
    conn.execute(
        sa.text(
            "INSERT INTO benchmark_match (batch_id, task_id, row_index, side, benchmark_id) "
            "VALUES (:batch, :t, :r, :s, :b) ON CONFLICT (task_id, row_index) DO NOTHING"
        ),
        [
            {"batch": batch_id, "t": m.task_id, "r": m.row_index, "s": m.side, "b": m.benchmark_id}
            for m in matches
        ],
    )


def unchecked(engine: Engine) -> list[Benchmark]:
    """Indexed splits the published collection has not been re-checked against yet."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(f"SELECT {_COLUMNS} FROM benchmark WHERE checked_at IS NULL ORDER BY id")
        ).mappings()
        return [Benchmark(**row) for row in rows]


def mark_checked(engine: Engine, ids: Sequence[int]) -> None:
    """Remember that the collection was re-checked against these benchmarks."""
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE benchmark SET checked_at = now() WHERE id = ANY(:ids)"),
            {"ids": list(ids)},
        )


def published_texts(engine: Engine, after_id: int, limit: int) -> list[tuple[int, str, str, str]]:
    """A page of the current collection (instance id, dataset id, input, output), by id."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT instance_id, dataset_id, input, output FROM collection "
                "WHERE instance_id > :after ORDER BY instance_id LIMIT :limit"
            ),
            {"after": after_id, "limit": limit},
        )
        return [(r.instance_id, r.dataset_id, r.input, r.output) for r in rows]
