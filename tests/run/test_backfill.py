"""A three-day backfill whose runs go in parallel (as Airflow runs them: a backfill's own
max-active-runs overrides the DAG's) gives three versions, each with exactly its day's datasets
(issue 12)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dynosaur.emulators.hub import HubEmulator
from dynosaur.pipeline import grow, request_for
from dynosaur.settings import Settings

DAYS = ("2024-03-01", "2024-03-02", "2024-03-03")


def test_three_days_in_parallel_give_three_versions_each_with_its_own_day(
    live: Settings, store: Engine, hub: HubEmulator
) -> None:
    hub.now = datetime.fromisoformat("2024-03-03T23:59:59+00:00")  # the backfill runs later
    with ThreadPoolExecutor(max_workers=len(DAYS)) as pool:
        results = list(pool.map(lambda d: grow(live, store, request_for(day=d)), DAYS))
    assert sorted(r["status"] for r in results) == ["published"] * 3
    assert sorted(r["version"] for r in results) == [1, 2, 3]
    with store.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT DISTINCT b.window_start::date::text AS day, c.dataset_id, "
                "d.created_at::date::text AS created FROM collection c "
                "JOIN batch b ON b.version = c.version "
                "JOIN hub_dataset d ON d.dataset_id = c.dataset_id"
            )
        ).all()
        owned = conn.execute(
            sa.text(
                "SELECT b.window_start, b.window_end, d.created_at FROM hub_dataset d "
                "JOIN batch b ON b.id = d.batch_id"
            )
        ).all()
    by_version: dict[str, set[str]] = {}
    for row in rows:
        by_version.setdefault(row.day, set()).add(row.dataset_id)
    by_day: dict[str, set[str]] = {}
    for row in rows:
        by_day.setdefault(row.created, set()).add(row.dataset_id)
    assert set(by_version) == set(DAYS)
    for d in DAYS:
        assert by_version[d] and by_version[d] == by_day[d], d
    # Every dataset row belongs to the run whose window it was discovered in.
    assert owned and all(start <= created < end for start, end, created in owned)
