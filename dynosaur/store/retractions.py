"""Retractions and source checks: which source datasets are withdrawn from which version on,
and when each source of the collection was last rechecked on the Hub.

A retraction applies from the version after the newest published one: versions already
published keep their rows (``collection_at(N)`` for N below it), the next one and every later
one leave them out (the ``collection`` and ``published_instance`` views, ``collection_at``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dynosaur.reasons import Reason


@dataclass(frozen=True)
class Retraction:
    """One retracted source dataset."""

    dataset_id: str
    reason: str
    from_version: int
    detected_at: datetime
    revision: str | None = None
    note: str | None = None
    instances: int = 0


@dataclass(frozen=True)
class Source:
    """A source dataset of the collection, as collected: what a recheck compares against."""

    dataset_id: str
    sha: str
    licenses: tuple[str, ...]


def record(
    engine: Engine,
    dataset_id: str,
    reason: Reason,
    *,
    revision: str | None = None,
    note: str | None = None,
) -> Retraction | None:
    """Retract ``dataset_id`` from the next version on; None when it is already retracted
    (the first retraction stands: its version and reason do not move)."""
    with engine.begin() as conn:
        row = conn.execute(
            sa.text(
                "INSERT INTO retraction (dataset_id, revision, reason, note, from_version) "
                "SELECT :d, :rev, :reason, :note, coalesce(max(version), 0) + 1 "
                "FROM batch WHERE status = 'published' "
                "ON CONFLICT (dataset_id) DO NOTHING "
                "RETURNING dataset_id, reason, from_version, detected_at, revision, note"
            ),
            {"d": dataset_id, "rev": revision, "reason": reason.value, "note": note},
        ).one_or_none()
    return Retraction(**row._mapping) if row is not None else None


def retractions(engine: Engine, *, up_to_version: int | None = None) -> list[Retraction]:
    """Retractions in force at version ``up_to_version`` (default: all), oldest first, with the
    number of published instances each withdraws."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT dataset_id, reason, from_version, detected_at, revision, note, instances "
                "FROM retracted_source "
                "WHERE CAST(:n AS integer) IS NULL OR from_version <= :n "
                "ORDER BY from_version, dataset_id"
            ),
            {"n": up_to_version},
        ).mappings()
        return [Retraction(**row) for row in rows]


def sources_due(engine: Engine, limit: int) -> list[Source]:
    """Up to ``limit`` sources of the collection not retracted yet, the longest unchecked first
    (never checked before any checked one); each with the newest revision collected."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                """
                WITH sources AS (
                    SELECT DISTINCT ON (d.dataset_id) d.dataset_id, d.sha, d.licenses
                    FROM hub_dataset d
                    WHERE EXISTS (
                        SELECT 1 FROM dataset_config c
                        JOIN task t ON t.config_id = c.id
                        JOIN instance i ON i.task_id = t.id
                        JOIN batch b ON b.id = i.batch_id AND b.status = 'published'
                        WHERE c.hub_dataset_id = d.id
                    )
                    ORDER BY d.dataset_id, d.discovered_at DESC
                )
                SELECT s.dataset_id, s.sha, s.licenses
                FROM sources s
                LEFT JOIN source_check sc ON sc.dataset_id = s.dataset_id
                WHERE NOT EXISTS (SELECT 1 FROM retraction r WHERE r.dataset_id = s.dataset_id)
                ORDER BY sc.checked_at NULLS FIRST, s.dataset_id
                LIMIT :limit
                """
            ),
            {"limit": limit},
        )
        return [Source(r.dataset_id, r.sha, tuple(r.licenses or ())) for r in rows]


def record_check(engine: Engine, dataset_id: str, outcome: str) -> None:
    """Remember that ``dataset_id`` was rechecked now, and what was found."""
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO source_check (dataset_id, outcome) VALUES (:d, :o) "
                "ON CONFLICT (dataset_id) DO UPDATE "
                "SET checked_at = now(), outcome = excluded.outcome"
            ),
            {"d": dataset_id, "o": outcome},
        )


def retracted_members(engine: Engine, selection_name: str) -> dict[str, int]:
    """Instances of a stored selection whose source has been retracted since: dataset id ->
    members."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT dataset_id, count(*) AS n FROM selected_instance "
                "WHERE selection_name = :s AND retracted_from IS NOT NULL "
                "GROUP BY dataset_id ORDER BY dataset_id"
            ),
            {"s": selection_name},
        )
        return {r.dataset_id: r.n for r in rows}
