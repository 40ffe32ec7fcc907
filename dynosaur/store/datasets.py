"""The datasets repository: every SQL statement about ``hub_dataset`` and the ``dataset_config``
rows that collect writes.

Discovery inserts revisions keyed by (dataset_id, sha); collection claims a ``discovered`` or
``deferred`` row and writes its outcome and its configs in one transaction, so a dataset is
either untouched or completely collected. A collected config reads back as a
:class:`~dynosaur.model.ConfigMetadata` through :func:`load_config_metadata`.

The records here (:class:`NewRevision`, :class:`DatasetOutcome`, ...) are what the store reads
and writes; :mod:`dynosaur.hub` fills them and never writes SQL itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from dynosaur.errors import ConfigNotFound
from dynosaur.model import ConfigMetadata, FieldInfo
from dynosaur.redact import redact

# Statuses of a hub_dataset row that collect may (re)take.
COLLECTABLE = ("discovered", "deferred")

# The batch that owns the rows discover inserts in this context (see :func:`owned_by`).
_OWNER: ContextVar[int | None] = ContextVar("dynosaur_dataset_owner", default=None)


@contextmanager
def owned_by(batch_id: int) -> Iterator[None]:
    """Revisions inserted in this block belong to batch ``batch_id`` from birth, so that runs in
    parallel (a backfill) never take each other's new datasets."""
    token = _OWNER.set(batch_id)
    try:
        yield
    finally:
        _OWNER.reset(token)


def _json(value: Any) -> str | None:
    # allow_nan=False: jsonb refuses NaN; values were cleaned before, so this only guards.
    return None if value is None else json.dumps(value, ensure_ascii=False, allow_nan=False)


# --- discover ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewRevision:
    """A dataset revision that discover found, as a ``hub_dataset`` row starts."""

    dataset_id: str
    sha: str
    created_at: datetime | None
    last_modified: datetime | None
    discovered_via: str  # created | modified | explicit
    hub_url: str
    gated: bool = False
    private: bool = False


_INSERT_DATASET = sa.text(
    """
    INSERT INTO hub_dataset (dataset_id, sha, created_at, last_modified, discovered_via,
                             hub_url, gated, private, batch_id)
    VALUES (:dataset_id, :sha, :created_at, :last_modified, :via, :hub_url, :gated, :private,
            :owner)
    ON CONFLICT (dataset_id, sha) DO NOTHING
    RETURNING id
    """
)


def insert_revisions(engine: Engine, revisions: Sequence[NewRevision]) -> list[int | None]:
    """Insert each revision not stored yet: per item, the new row's id, or None when that
    (dataset_id, sha) was stored before."""
    new: list[int | None] = []
    owner = _OWNER.get()
    with engine.begin() as conn:
        for item in revisions:
            row = conn.execute(
                _INSERT_DATASET,
                {
                    "dataset_id": item.dataset_id,
                    "sha": item.sha,
                    "created_at": item.created_at,
                    "last_modified": item.last_modified,
                    "via": item.discovered_via,
                    "hub_url": item.hub_url,
                    "gated": item.gated,
                    "private": item.private,
                    "owner": owner,
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


# --- which run owns which work (issue 12) -------------------------------------------------------

# A row's owner is "alive" while it is a building batch whose holder's heartbeat is within the
# lease; work of any other owner (none, finished, failed, stale) may be adopted when it is due.
_OWNER_GONE = """
    (d.batch_id IS NULL OR NOT EXISTS (
        SELECT 1 FROM batch b WHERE b.id = d.batch_id AND b.status = 'building'
          AND b.heartbeat_at >= now() - make_interval(secs => :lease)))
"""


def claim_requested(engine: Engine, batch_id: int, ids: Sequence[str], lease_s: float) -> int:
    """Take for the batch the waiting rows of explicitly requested dataset ids that no live run
    holds (e.g. discovered earlier by ``dynosaur discover``); how many."""
    if not ids:
        return 0
    with engine.begin() as conn:
        rows = conn.execute(
            sa.text(
                f"UPDATE hub_dataset d SET batch_id = :b WHERE d.dataset_id = ANY(:ids) "
                f"AND d.status = ANY(:waiting) AND d.batch_id IS DISTINCT FROM :b "
                f"AND {_OWNER_GONE} RETURNING d.id"
            ),
            {"b": batch_id, "ids": list(ids), "waiting": list(COLLECTABLE), "lease": lease_s},
        ).all()
    return len(rows)


@dataclass(frozen=True)
class Adopted:
    """Retryable work a run took over from others: dataset ids to collect, configs to generate,
    generated configs to curate (each a list of ``dataset_id`` or ``dataset_id/config``)."""

    datasets: list[str] = field(default_factory=list)
    configs: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"datasets": self.datasets, "configs": self.configs}

    def __bool__(self) -> bool:
        return bool(self.datasets or self.configs)


def adopt_leftovers(
    engine: Engine, batch_id: int, lease_s: float, *, due_config_ids: Sequence[int] = ()
) -> Adopted:
    """Take for the batch the retryable work no live run holds: datasets waiting to be collected
    (discovered, or deferred and due), configs waiting for generation among ``due_config_ids``
    (the generate queue: what is due), and generated configs no batch curated yet."""
    params = {
        "b": batch_id,
        "lease": lease_s,
        "due": [int(i) for i in due_config_ids],
    }
    with engine.begin() as conn:
        datasets = conn.execute(
            sa.text(
                f"""
                UPDATE hub_dataset d SET batch_id = :b
                WHERE d.batch_id IS DISTINCT FROM :b AND {_OWNER_GONE}
                  AND (d.status = 'discovered' OR (d.status = 'deferred'
                       AND (d.next_attempt_at IS NULL OR d.next_attempt_at <= now())))
                RETURNING d.dataset_id
                """
            ),
            params,
        ).scalars()
        adopted_datasets = sorted(datasets)
        configs = conn.execute(
            sa.text(
                f"""
                WITH taken AS (
                    SELECT DISTINCT c.hub_dataset_id FROM dataset_config c
                    JOIN hub_dataset d ON d.id = c.hub_dataset_id
                    WHERE d.batch_id IS DISTINCT FROM :b AND {_OWNER_GONE}
                      AND ((c.status IN ('collected', 'deferred') AND c.id = ANY(:due))
                           OR (c.status = 'generated' AND c.batch_id IS NULL))
                ), moved AS (
                    UPDATE hub_dataset d SET batch_id = :b FROM taken
                    WHERE d.id = taken.hub_dataset_id RETURNING d.id, d.dataset_id
                )
                SELECT m.dataset_id || '/' || c.config_name FROM moved m
                JOIN dataset_config c ON c.hub_dataset_id = m.id
                WHERE (c.status IN ('collected', 'deferred') AND c.id = ANY(:due))
                   OR (c.status = 'generated' AND c.batch_id IS NULL)
                """
            ),
            params,
        ).scalars()
        adopted_configs = sorted(configs)
    return Adopted(adopted_datasets, adopted_configs)


def owned_collect_queue(engine: Engine, batch_id: int, *, limit: int | None = None) -> list[int]:
    """The batch's datasets to collect now: discovered ones and deferred ones, oldest discovery
    first. The batch's own deferred datasets are tried again at once, due or not: only a re-run
    of its key finds them (e.g. after the Hub could not be reached), as its own waiting configs
    are generated again at once."""
    with engine.connect() as conn:
        return [
            int(r)
            for r in conn.execute(
                sa.text(
                    """
                    SELECT id FROM hub_dataset WHERE batch_id = :b
                      AND status IN ('discovered', 'deferred')
                    ORDER BY discovered_at, id LIMIT :n
                    """
                ),
                {"b": batch_id, "n": limit},
            ).scalars()
        ]


def owned_configs(engine: Engine, batch_id: int, *, statuses: Sequence[str]) -> list[int]:
    """Configs of the batch's datasets with one of ``statuses``, in id order."""
    with engine.connect() as conn:
        return [
            int(r)
            for r in conn.execute(
                sa.text(
                    "SELECT c.id FROM dataset_config c JOIN hub_dataset d "
                    "ON d.id = c.hub_dataset_id WHERE d.batch_id = :b "
                    "AND c.status = ANY(:s) ORDER BY c.id"
                ),
                {"b": batch_id, "s": list(statuses)},
            ).scalars()
        ]


def owned_dataset_ids(engine: Engine, batch_id: int) -> list[str]:
    """Hub ids of the datasets a batch owns (tests and the run summary)."""
    with engine.connect() as conn:
        return sorted(
            conn.execute(
                sa.text("SELECT DISTINCT dataset_id FROM hub_dataset WHERE batch_id = :b"),
                {"b": batch_id},
            ).scalars()
        )


def record_rejected_ids(
    engine: Engine, batch_id: int, rejected: Sequence[tuple[str, str, str]]
) -> None:
    """Store explicit dataset ids a run could not take, as (dataset_id, reason, message)."""
    if not rejected:
        return
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO requested_dataset (batch_id, dataset_id, reason, message) "
                "VALUES (:b, :i, :r, :m) ON CONFLICT (batch_id, dataset_id) DO UPDATE "
                "SET reason = excluded.reason, message = excluded.message"
            ),
            [{"b": batch_id, "i": i, "r": r, "m": m[:2000]} for i, r, m in rejected],
        )


def stored_dataset_ids(engine: Engine, ids: Sequence[str]) -> set[str]:
    """Which of these Hub dataset ids have a ``hub_dataset`` row."""
    if not ids:
        return set()
    with engine.connect() as conn:
        return set(
            conn.execute(
                sa.text("SELECT DISTINCT dataset_id FROM hub_dataset WHERE dataset_id = ANY(:i)"),
                {"i": list(ids)},
            ).scalars()
        )


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
    last_modified: datetime | None = None


def load_pending(engine: Engine, row_ids: Sequence[int]) -> list[PendingDataset]:
    """The rows ``row_ids`` (any status; the caller skips those already done), in that order."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT id, dataset_id, sha, status, gated, private, attempts, last_modified "
                "FROM hub_dataset WHERE id = ANY(:ids)"
            ),
            {"ids": [int(i) for i in row_ids]},
        ).all()
    by_id = {int(r.id): PendingDataset(*r) for r in rows}
    return [by_id[int(i)] for i in dict.fromkeys(row_ids) if int(i) in by_id]


class CardColumns(Protocol):
    """What a ``hub_dataset`` row keeps of a card (:class:`dynosaur.hub.card.CardInfo` is one)."""

    @property
    def data(self) -> dict[str, Any] | None: ...
    @property
    def pretty_name(self) -> str | None: ...
    @property
    def licenses(self) -> Sequence[str]: ...
    @property
    def languages(self) -> Sequence[str]: ...
    @property
    def multilinguality(self) -> Sequence[str]: ...
    @property
    def task_categories(self) -> Sequence[str]: ...
    @property
    def task_ids(self) -> Sequence[str]: ...
    @property
    def summary(self) -> str | None: ...
    @property
    def supported_tasks(self) -> str | None: ...
    @property
    def data_fields(self) -> str | None: ...
    @property
    def license_source(self) -> str | None: ...
    @property
    def license_class(self) -> str | None: ...
    @property
    def description_source(self) -> str | None: ...


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
    language: list[str] = field(default_factory=list)  # ISO 639-1 codes or "code"; [] unknown
    language_source: str | None = None  # card_config | translation | config_name | card | detected


@dataclass
class DatasetOutcome:
    """One dataset as collect stores it."""

    row_id: int
    status: str  # collected | skipped | deferred | failed
    reason: str | None = None
    message: str | None = None
    card: CardColumns | None = None
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
        license_source = :license_source, license_class = :license_class,
        description_source = :description_source,
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
                                sample_split, sample_rows, status, reason, message, notes,
                                language, language_source)
    VALUES (:hub_dataset_id, :config_name, CAST(:splits AS jsonb), CAST(:features AS jsonb),
            CAST(:fields AS jsonb), :sample_split, CAST(:sample_rows AS jsonb), :status,
            :reason, :message, :notes, :language, :language_source)
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


def _card_values(card: CardColumns | None) -> dict[str, Any]:
    """The card columns of a ``hub_dataset`` row (empty ones without a card)."""
    if card is None:
        return {
            "card_data": None,
            "pretty_name": None,
            "summary": None,
            "supported_tasks": None,
            "data_fields": None,
            "license_source": None,
            "license_class": None,
            "description_source": None,
            "licenses": [],
            "languages": [],
            "multilinguality": [],
            "task_categories": [],
            "task_ids": [],
        }
    return {
        "card_data": _json(card.data),
        "pretty_name": card.pretty_name,
        "summary": card.summary,
        "supported_tasks": card.supported_tasks,
        "data_fields": card.data_fields,
        "license_source": card.license_source,
        "license_class": card.license_class,
        "description_source": card.description_source,
        "licenses": list(card.licenses),
        "languages": list(card.languages),
        "multilinguality": list(card.multilinguality),
        "task_categories": list(card.task_categories),
        "task_ids": list(card.task_ids),
    }


def _save(conn: Connection, outcome: DatasetOutcome) -> bool:
    claimed = conn.execute(
        _SAVE_DATASET,
        {
            "id": outcome.row_id,
            "status": outcome.status,
            "reason": outcome.reason,
            "message": redact(outcome.message) if outcome.message else outcome.message,
            "notes": list(dict.fromkeys(outcome.notes)),
            **_card_values(outcome.card),
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
                    "message": redact(config.message) if config.message else config.message,
                    "notes": list(dict.fromkeys(config.notes)),
                    "language": list(config.language),
                    "language_source": config.language_source,
                }
                for config in outcome.configs
            ],
        )
    return True


# --- read back --------------------------------------------------------------------------------


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
