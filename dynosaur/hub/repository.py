"""The store side of Hub ingestion: ``hub_dataset`` and ``dataset_config`` rows.

Discovery upserts revisions keyed by (dataset_id, sha); collection claims a ``discovered`` or
``deferred`` row and writes its outcome and its configs in one transaction, so a dataset is
either untouched or completely collected. Task generation reads a collected config back as a
:class:`~dynosaur.model.ConfigMetadata` through :func:`load_config_metadata`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from dynosaur.errors import DynosaurError
from dynosaur.hub.card import CardInfo
from dynosaur.hub.client import HubDataset
from dynosaur.model import ConfigMetadata, FieldInfo

COLLECTABLE = ("discovered", "deferred")


def _json(value: Any) -> str | None:
    # allow_nan=False: jsonb refuses NaN; values were cleaned before, so this only guards.
    return None if value is None else json.dumps(value, ensure_ascii=False, allow_nan=False)


def hub_url(endpoint: str, dataset_id: str) -> str:
    """The dataset's page on the Hub that serves it."""
    return f"{endpoint.rstrip('/')}/datasets/{dataset_id}"


# --- discover ---------------------------------------------------------------------------------


_INSERT_DATASET = sa.text(
    """
    INSERT INTO hub_dataset (dataset_id, sha, created_at, last_modified, discovered_via,
                             hub_url, gated, private)
    VALUES (:dataset_id, :sha, :created_at, :last_modified, :via, :hub_url, :gated, :private)
    ON CONFLICT (dataset_id, sha) DO NOTHING
    RETURNING id
    """
)


def insert_revisions(
    engine: Engine, endpoint: str, found: Sequence[tuple[HubDataset, str]]
) -> list[int | None]:
    """Insert each (revision, discovered_via) not stored yet: per item, the new row's id, or
    None when that revision was stored before."""
    new: list[int | None] = []
    with engine.begin() as conn:
        for item, via in found:
            row = conn.execute(
                _INSERT_DATASET,
                {
                    "dataset_id": item.dataset_id,
                    "sha": item.sha,
                    "created_at": item.created_at,
                    "last_modified": item.last_modified,
                    "via": via,
                    "hub_url": hub_url(endpoint, item.dataset_id),
                    "gated": item.gated,
                    "private": item.private,
                },
            ).first()
            new.append(int(row[0]) if row is not None else None)
    return new


# --- collect ----------------------------------------------------------------------------------


def collect_queue(
    engine: Engine, *, ids: Sequence[str] | None = None, limit: int | None = None
) -> list[int]:
    """Rows to collect now: ``discovered`` ones, and ``deferred`` ones that are due (explicit
    ``ids``, Hub dataset ids, take deferred ones at once), oldest discovery first."""
    query = """
        SELECT id FROM hub_dataset
        WHERE (status = 'discovered'
               OR (status = 'deferred' AND (next_attempt_at IS NULL OR next_attempt_at <= now()
                                            OR :explicit)))
    """
    params: dict[str, Any] = {"explicit": ids is not None}
    if ids is not None:
        query += " AND dataset_id = ANY(:ids)"
        params["ids"] = list(ids)
    query += " ORDER BY discovered_at, id"
    if limit is not None:
        query += " LIMIT :limit"
        params["limit"] = limit
    with engine.connect() as conn:
        return [int(r[0]) for r in conn.execute(sa.text(query), params)]


@dataclass(frozen=True)
class PendingDataset:
    """A ``hub_dataset`` row as collect needs it."""

    id: int
    dataset_id: str
    sha: str
    status: str
    gated: bool
    private: bool
    attempts: int


def load_pending(engine: Engine, row_ids: Sequence[int]) -> list[PendingDataset]:
    """The rows ``row_ids`` (any status; the caller skips those already done), in that order."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT id, dataset_id, sha, status, gated, private, attempts "
                "FROM hub_dataset WHERE id = ANY(:ids)"
            ),
            {"ids": [int(i) for i in row_ids]},
        ).all()
    by_id = {int(r.id): PendingDataset(*r) for r in rows}
    return [by_id[int(i)] for i in dict.fromkeys(row_ids) if int(i) in by_id]


@dataclass
class ConfigOutcome:
    """One config as collect stores it."""

    name: str
    status: str  # collected | skipped
    reason: str | None = None
    message: str | None = None
    notes: list[str] = field(default_factory=list)
    splits: dict[str, int | None] = field(default_factory=dict)
    features: dict[str, Any] | None = None
    fields: list[FieldInfo] = field(default_factory=list)
    sample_split: str | None = None
    sample_rows: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class DatasetOutcome:
    """One dataset as collect stores it."""

    row_id: int
    status: str  # collected | skipped | deferred | failed
    reason: str | None = None
    message: str | None = None
    card: CardInfo | None = None
    notes: list[str] = field(default_factory=list)
    gated: bool | None = None
    private: bool | None = None
    attempts: int | None = None  # set for deferrals and failures that count attempts
    retry_in_s: float | None = None  # deferred: seconds until the next attempt
    configs: list[ConfigOutcome] = field(default_factory=list)


_SAVE_DATASET = sa.text(
    """
    UPDATE hub_dataset SET
        status = :status, reason = :reason, message = :message, notes = :notes,
        card_data = CAST(:card_data AS jsonb), pretty_name = :pretty_name,
        licenses = :licenses, languages = :languages, multilinguality = :multilinguality,
        task_categories = :task_categories, task_ids = :task_ids,
        summary = :summary, supported_tasks = :supported_tasks, data_fields = :data_fields,
        gated = COALESCE(:gated, gated), private = COALESCE(:private, private),
        attempts = COALESCE(:attempts, attempts),
        next_attempt_at = CASE WHEN :status = 'deferred'
                               THEN now() + make_interval(secs => :retry_in_s) END,
        collected_at = CASE WHEN :status = 'collected' THEN now() END,
        updated_at = now()
    WHERE id = :id AND status IN ('discovered', 'deferred')
    RETURNING id
    """
)

_INSERT_CONFIG = sa.text(
    """
    INSERT INTO dataset_config (hub_dataset_id, config_name, splits, features, fields,
                                sample_split, sample_rows, status, reason, message, notes)
    VALUES (:hub_dataset_id, :config_name, CAST(:splits AS jsonb), CAST(:features AS jsonb),
            CAST(:fields AS jsonb), :sample_split, CAST(:sample_rows AS jsonb), :status,
            :reason, :message, :notes)
    ON CONFLICT (hub_dataset_id, config_name) DO NOTHING
    """
)


def save_outcome(engine: Engine, outcome: DatasetOutcome) -> bool:
    """Store a dataset's outcome and its configs in one transaction; False when the row was
    no longer waiting (collected meanwhile by another worker): then nothing is written."""
    with engine.begin() as conn:
        return _save(conn, outcome)


def save_batch(engine: Engine, outcomes: Sequence[DatasetOutcome]) -> list[bool]:
    """Store several outcomes in one transaction (see :func:`save_outcome`)."""
    with engine.begin() as conn:
        return [_save(conn, outcome) for outcome in outcomes]


def _save(conn: Connection, outcome: DatasetOutcome) -> bool:
    card = outcome.card or CardInfo()
    claimed = conn.execute(
        _SAVE_DATASET,
        {
            "id": outcome.row_id,
            "status": outcome.status,
            "reason": outcome.reason,
            "message": outcome.message,
            "notes": list(dict.fromkeys(outcome.notes)),
            "card_data": _json(card.data),
            "pretty_name": card.pretty_name,
            "licenses": list(card.licenses),
            "languages": list(card.languages),
            "multilinguality": list(card.multilinguality),
            "task_categories": list(card.task_categories),
            "task_ids": list(card.task_ids),
            "summary": card.summary,
            "supported_tasks": card.supported_tasks,
            "data_fields": card.data_fields,
            "gated": outcome.gated,
            "private": outcome.private,
            "attempts": outcome.attempts,
            "retry_in_s": float(outcome.retry_in_s or 0.0),
        },
    ).first()
    if claimed is None:
        return False
    if outcome.configs:
        conn.execute(
            _INSERT_CONFIG,
            [
                {
                    "hub_dataset_id": outcome.row_id,
                    "config_name": config.name,
                    "splits": _json(config.splits),
                    "features": _json(config.features),
                    "fields": _json([f.to_json() for f in config.fields]),
                    "sample_split": config.sample_split,
                    "sample_rows": _json(config.sample_rows),
                    "status": config.status,
                    "reason": config.reason,
                    "message": config.message,
                    "notes": list(dict.fromkeys(config.notes)),
                }
                for config in outcome.configs
            ],
        )
    return True


# --- read back --------------------------------------------------------------------------------


class ConfigNotFound(DynosaurError):
    """No dataset_config row has that id."""


def load_config_metadata(engine: Engine, config_id: int) -> ConfigMetadata:
    """What task generation needs of one collected config (its prompt's whole input)."""
    with engine.connect() as conn:
        row = conn.execute(
            sa.text(
                """
                SELECT d.dataset_id, c.config_name, c.fields, c.sample_rows, d.pretty_name,
                       d.summary, d.supported_tasks, d.data_fields, d.task_categories, d.task_ids
                FROM dataset_config c JOIN hub_dataset d ON d.id = c.hub_dataset_id
                WHERE c.id = :id
                """
            ),
            {"id": int(config_id)},
        ).first()
    if row is None:
        raise ConfigNotFound(f"no dataset config with id {config_id}")
    return ConfigMetadata.from_row(row)
