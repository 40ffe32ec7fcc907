"""Read-only figures over the whole store: batch summaries, rows per status, outcomes by reason,
and the example queries of ``sql/queries``. What ``dynosaur status`` and the demo show.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dynosaur.store.batches import batch_figures

# The tables whose rows carry a status that says where they are in the data path.
STATUS_TABLES = (("datasets", "hub_dataset"), ("configs", "dataset_config"), ("tasks", "task"))


@dataclass(frozen=True)
class BatchSummary:
    """A batch's figures a person looks at first (the columns of the ``batch_summary`` view)."""

    batch_id: int
    version: int | None
    status: str
    run_key: str
    window_start: datetime | None
    datasets: int
    configs: int
    tasks_valid: int
    tasks_rejected: int
    instances: int
    llm_calls: int
    cost_usd: float


@dataclass(frozen=True)
class StatusCount:
    """How many rows of a kind (``datasets``, ``configs``, ``tasks``) have a status."""

    what: str
    status: str
    count: int


@dataclass(frozen=True)
class ReasonCount:
    """One row of ``outcome_by_reason``: how many rows of an entity carry a status and reason."""

    entity: str
    status: str
    reason: str
    count: int


@dataclass(frozen=True)
class QueryRows:
    """The columns and rows a query answered."""

    columns: list[str]
    rows: list[tuple[Any, ...]]


# The figures a summary shows, as ``batch_figures`` stores them in ``batch.figures`` at publish.
SUMMARY_FIGURES = ("datasets", "configs", "tasks_valid", "tasks_rejected", "instances", "llm_calls")


def batch_summaries(
    engine: Engine, *, limit: int | None = None, published_only: bool = False
) -> list[BatchSummary]:
    """Batches with their figures: the newest ``limit`` of any status (newest first), or every
    published one (oldest version first).

    A published or empty batch shows the figures stored when it was published (``batch.figures``,
    final from then on), so the cost does not grow with the store; only a batch still building or
    failed (or one published before figures were stored) is counted now, by its own rows.
    """
    where, order = ("WHERE status = 'published'", "version") if published_only else ("", "id DESC")
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT id, version, status, run_key, window_start, figures, cost_usd "
                f"FROM batch {where} ORDER BY {order} LIMIT :n"
            ),
            {"n": limit},
        ).all()
        summaries = []
        for row in rows:
            stored = row.figures or {}
            final = row.status in ("published", "empty")
            if final and all(k in stored for k in SUMMARY_FIGURES):
                counts, cost = stored, float(row.cost_usd)
            else:
                counts = batch_figures(conn, row.id)
                cost = float(counts["cost_usd"])
            summaries.append(
                BatchSummary(
                    batch_id=row.id,
                    version=row.version,
                    status=row.status,
                    run_key=row.run_key,
                    window_start=row.window_start,
                    **{k: int(counts[k]) for k in SUMMARY_FIGURES},
                    cost_usd=cost,
                )
            )
    return summaries


def rows_by_status(engine: Engine) -> list[StatusCount]:
    """Rows per status of datasets, configs and tasks: the work done and waiting per step."""
    union = " UNION ALL ".join(
        f"SELECT '{what}' AS what, status, count(*) AS n FROM {table} GROUP BY status"
        for what, table in STATUS_TABLES
    )
    with engine.connect() as conn:
        rows = conn.execute(sa.text(f"{union} ORDER BY 1, 2")).all()
    return [StatusCount(what, status, int(n)) for what, status, n in rows]


def outcomes_by_reason(engine: Engine) -> list[ReasonCount]:
    """Every skip, deferral, failure and rejection counted by (entity, status, reason), most
    frequent first (the ``outcome_by_reason`` view)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT entity, status, reason, n FROM outcome_by_reason "
                "ORDER BY n DESC, entity, status, reason"
            )
        ).all()
    return [ReasonCount(entity, status, reason, int(n)) for entity, status, reason, n in rows]


def run_query(engine: Engine, sql: str, params: dict[str, Any] | None = None) -> QueryRows:
    """Run one read-only query (e.g. a file of ``sql/queries``) with its ``:name`` parameters."""
    with engine.connect() as conn:
        result = conn.execute(sa.text(sql), params or {})
        return QueryRows(columns=list(result.keys()), rows=[tuple(r) for r in result])
