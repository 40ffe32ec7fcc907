"""What the growth report shows, read from the views (``growth``, ``batch_summary``,
``rejection``, ``task_overview``, ``collection``): every figure of a version's report is one of
these queries, so a person can check any number on the page with SQL.

Every query takes the version the report is about and sees nothing published after it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

# Batches up to a version: the published ones up to it, and the empty or failed ones created
# before the next version was published (what happened on the way to this version).
_BATCHES_UP_TO = """
    SELECT s.* FROM batch_summary s
    WHERE s.status <> 'building'
      AND (s.version <= :version
           OR (s.version IS NULL AND s.created_at <= (
                 SELECT coalesce(min(b.published_at), 'infinity'::timestamptz) FROM batch b
                 WHERE b.version > :version)))
"""


def _num(value: Any) -> float:
    return float(value) if isinstance(value, Decimal) else float(value or 0)


@dataclass(frozen=True)
class GrowthRow:
    """One published version (the ``growth`` view): what it added and the running totals."""

    version: int
    published_at: datetime
    window_start: datetime | None
    new_datasets: int
    new_tasks: int
    new_instances: int
    cost_usd: float
    total_datasets: int
    total_tasks: int
    total_instances: int
    total_cost_usd: float


@dataclass(frozen=True)
class BatchRow:
    """One finished batch (``batch_summary``): its outcome, size and cost."""

    batch_id: int
    version: int | None
    status: str
    run_key: str
    datasets: int
    tasks_valid: int
    tasks_rejected: int
    instances: int
    llm_calls: int
    cost_usd: float
    usd_per_instance: float | None
    usd_per_valid_task: float | None

    @property
    def label(self) -> str:
        """How plots and tables name the batch: its version, else its id and status."""
        return f"v{self.version}" if self.version is not None else f"#{self.batch_id} {self.status}"


@dataclass(frozen=True)
class OutcomeRow:
    """How many rows a batch dropped (skipped, failed, rejected) for one entity and reason."""

    batch_id: int
    entity: str
    status: str
    reason: str
    n: int


@dataclass(frozen=True)
class ShareRow:
    """How many valid tasks and instances of the collection fall under one label."""

    label: str
    tasks: int
    instances: int


@dataclass(frozen=True)
class SampleRow:
    """One instance of the version's own batch (one per task, the first few tasks)."""

    instance_id: int
    dataset_id: str
    config_name: str
    instruction: str
    input: str
    output: str
    license: str | None


def growth(engine: Engine, version: int) -> list[GrowthRow]:
    """The ``growth`` view up to ``version``, oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT version, published_at, window_start, new_datasets, new_tasks, "
                "new_instances, cost_usd, total_datasets, total_tasks, total_instances, "
                "total_cost_usd FROM growth WHERE version <= :version ORDER BY version"
            ),
            {"version": version},
        ).all()
    return [
        GrowthRow(
            **{
                **row._asdict(),
                **{k: int(getattr(row, k)) for k in ("total_datasets", "total_tasks")},
                "total_instances": int(row.total_instances),
                "cost_usd": _num(row.cost_usd),
                "total_cost_usd": _num(row.total_cost_usd),
            }
        )
        for row in rows
    ]


def batches(engine: Engine, version: int) -> list[BatchRow]:
    """Finished batches up to ``version`` (published, empty, failed), oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT batch_id, version, status, run_key, datasets, tasks_valid, "
                "tasks_rejected, instances, llm_calls, cost_usd, usd_per_instance, "
                f"usd_per_valid_task FROM ({_BATCHES_UP_TO}) x ORDER BY created_at, batch_id"
            ),
            {"version": version},
        ).all()
    return [
        BatchRow(
            **{
                **row._asdict(),
                "cost_usd": _num(row.cost_usd),
                "usd_per_instance": None
                if row.usd_per_instance is None
                else _num(row.usd_per_instance),
                "usd_per_valid_task": None
                if row.usd_per_valid_task is None
                else _num(row.usd_per_valid_task),
            }
        )
        for row in rows
    ]


def outcomes_per_batch(engine: Engine, version: int) -> list[OutcomeRow]:
    """What each finished batch up to ``version`` dropped for good, by entity and reason (the
    ``rejection`` view's final outcomes: skipped, failed, rejected).

    A rejected task belongs to the batch that curated it; a skipped or failed dataset, config
    or generation to the run during which it got that outcome (the last batch created before
    the row was last updated: runs of the growth DAG never overlap).
    """
    sql = f"""
        WITH batches AS ({_BATCHES_UP_TO}),
        dropped AS (
            SELECT r.entity, r.status, r.reason, r.at,
                   (SELECT t.batch_id FROM task t WHERE t.id = r.task_id) AS task_batch
            FROM rejection r
            WHERE r.status IN ('skipped', 'failed', 'rejected')
        )
        SELECT coalesce(d.task_batch, (
                   SELECT b.batch_id FROM batches b WHERE b.created_at <= d.at
                   ORDER BY b.created_at DESC LIMIT 1)) AS batch_id,
               d.entity, d.status, d.reason, count(*) AS n
        FROM dropped d
        GROUP BY 1, 2, 3, 4
    """
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                f"SELECT o.* FROM ({sql}) o JOIN ({_BATCHES_UP_TO}) b ON b.batch_id = o.batch_id "
                "ORDER BY o.batch_id, o.n DESC, o.entity, o.reason"
            ),
            {"version": version},
        ).all()
    return [OutcomeRow(r.batch_id, r.entity, r.status, r.reason, int(r.n)) for r in rows]


def _shares(engine: Engine, version: int, label_sql: str) -> list[ShareRow]:
    """Valid tasks and instances of version ``version`` of the collection per label
    (``label_sql`` turns a ``task_overview`` row ``o`` into a set of labels; none: ``(none)``),
    most instances first: the versions up to ``version``, less the sources retracted by then (as
    ``collection_at``)."""
    sql = f"""
        SELECT coalesce(l.label, '(none)') AS label, count(*) AS tasks,
               sum(o.instances) AS instances
        FROM task_overview o
        LEFT JOIN LATERAL ({label_sql}) l(label) ON true
        WHERE o.status = 'valid' AND o.version <= :version
          AND NOT EXISTS (
              SELECT 1 FROM retraction r
              WHERE r.dataset_id = o.dataset_id AND r.from_version <= :version
          )
        GROUP BY 1 ORDER BY 3 DESC, 2 DESC, 1
    """
    with engine.connect() as conn:
        rows = conn.execute(sa.text(sql), {"version": version}).all()
    return [ShareRow(r.label, int(r.tasks), int(r.instances or 0)) for r in rows]


def task_categories(engine: Engine, version: int) -> list[ShareRow]:
    """Valid tasks and instances per task category of their source dataset."""
    return _shares(engine, version, "SELECT unnest(o.task_categories)")


def languages(engine: Engine, version: int) -> list[ShareRow]:
    """Valid tasks and instances per language of their source dataset."""
    return _shares(engine, version, "SELECT unnest(o.languages)")


def licenses(engine: Engine, version: int) -> list[ShareRow]:
    """Tasks and instances of version ``version`` of the collection per instance license
    (``collection_at``: without the sources retracted by then)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT coalesce(license, '(none)') AS label, count(DISTINCT task_id) AS tasks, "
                "count(*) AS instances FROM collection_at(:version) "
                "GROUP BY 1 ORDER BY 3 DESC, 1"
            ),
            {"version": version},
        ).all()
    return [ShareRow(r.label, int(r.tasks), int(r.instances)) for r in rows]


def samples(engine: Engine, version: int, limit: int = 8) -> list[SampleRow]:
    """A few instances of the version's own batch: the first instance of each of its first
    ``limit`` tasks."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT instance_id, dataset_id, config_name, instruction, input, output, "
                "license FROM (SELECT DISTINCT ON (task_id) * FROM collection_at(:version) "
                "WHERE version = :version ORDER BY task_id, instance_id) x "
                "ORDER BY task_id LIMIT :limit"
            ),
            {"version": version, "limit": limit},
        ).all()
    return [SampleRow(**r._asdict()) for r in rows]


def run_summary(engine: Engine, dag_run_id: str) -> dict[str, Any] | None:
    """The figures of the batch an Airflow run built (``batch_summary``), with the collection's
    totals at its version (``growth``); None when the run opened no batch of its own."""
    with engine.connect() as conn:
        row = conn.execute(
            sa.text(
                "SELECT s.batch_id, s.version, s.status, s.reason, s.run_key, s.datasets, "
                "s.configs, s.tasks_valid, s.tasks_rejected, s.instances, s.llm_calls, "
                "s.cost_usd, g.total_instances, g.total_tasks, g.total_datasets "
                "FROM batch_summary s LEFT JOIN growth g ON g.version = s.version "
                "WHERE s.dag_run_id = :run ORDER BY s.batch_id DESC LIMIT 1"
            ),
            {"run": dag_run_id},
        ).first()
    if row is None:
        return None
    out = row._asdict()
    out["cost_usd"] = _num(row.cost_usd)
    for key in ("total_instances", "total_tasks", "total_datasets"):
        out[key] = None if out[key] is None else int(out[key])
    return out
