"""The example queries in sql/queries, each run as the read-only role against a populated store."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dynosaur.model import FieldInfo
from dynosaur.settings import Settings
from dynosaur.store.migrations import sql_dir
from tests.curate.factory import StoreFactory

QUERIES = sorted((sql_dir() / "queries").glob("*.sql"))
PARAMS: dict[str, dict[str, Any]] = {
    "tasks_by_category": {"version": 2},
    "licenses_in_version": {"version": 1},
    "why_dataset_rejected": {"dataset_id": "org/qa"},
}


@pytest.fixture
def populated(settings: Settings, store: Engine) -> Engine:
    """Two published versions, rejected tasks, a skipped dataset and a skipped config."""
    factory = StoreFactory(store, settings)
    news = factory.sentiment_config(
        "org/news", task_categories=["text-classification"], licenses=["mit"]
    )
    factory.task(news, "Classify the news review.", ["text"], "label")
    factory.publish("day1")

    qa = factory.dataset(
        "org/qa", task_categories=["question-answering", "text-generation"], licenses=["apache-2.0"]
    )
    rows = [{"question": f"What is {i}?", "answer": f"It is {i}."} for i in range(12)]
    fields = [FieldInfo("question", "string"), FieldInfo("answer", "string")]
    config = factory.config(qa, "main", rows=rows, fields=fields)
    factory.task(config, "Answer the question.", ["question"], "answer")
    factory.task(config, "Answer from the passage.", ["passage"], "answer")
    factory.config(qa, "images", rows=rows, fields=fields, status="skipped")
    with store.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO hub_dataset (dataset_id, sha, discovered_via, hub_url, status, "
                "reason, message) VALUES ('org/nolicense', 's', 'created', 'u', 'skipped', "
                "'no_license', 'the card declares no license')"
            )
        )
    factory.publish("day2")
    return store


def run_as_reader(engine: Engine, role: str, sql: str, params: dict[str, Any]) -> list[Any]:
    with engine.connect() as conn:
        conn.exec_driver_sql(f'SET ROLE "{role}"')
        try:
            return list(conn.execute(sa.text(sql), params).mappings().all())
        finally:
            conn.rollback()
            conn.exec_driver_sql("RESET ROLE")


@pytest.fixture
def query(populated: Engine, reader_role: str) -> Iterator[Any]:
    def run(name: str) -> list[Any]:
        path = sql_dir() / "queries" / f"{name}.sql"
        return run_as_reader(populated, reader_role, path.read_text(), PARAMS.get(name, {}))

    yield run


def test_there_is_a_query_for_each_question_users_ask() -> None:
    names = {p.stem for p in QUERIES}
    assert {"this_week", "tasks_by_category", "licenses_in_version", "why_dataset_rejected"} <= (
        names
    )


@pytest.mark.parametrize("path", QUERIES, ids=[p.stem for p in QUERIES])
def test_every_query_runs_as_the_reader_role(query, path) -> None:
    assert query(path.stem)  # every example answers something on the populated store


def test_this_week_lists_both_new_datasets(query) -> None:
    rows = query("this_week")
    assert {(r["dataset_id"], r["instances"]) for r in rows} == {("org/news", 10), ("org/qa", 12)}


def test_tasks_by_category_counts_each_category_of_a_dataset(query) -> None:
    rows = {r["task_category"]: (r["tasks"], r["instances"]) for r in query("tasks_by_category")}
    assert rows == {
        "text-classification": (1, 10),
        "question-answering": (1, 12),
        "text-generation": (1, 12),
    }


def test_licenses_in_version_1_exclude_what_version_2_added(query) -> None:
    rows = query("licenses_in_version")
    assert [(r["license"], r["instances"]) for r in rows] == [("mit", 10)]


def test_why_dataset_rejected_names_the_skipped_config_and_the_rejected_task(query) -> None:
    rows = query("why_dataset_rejected")
    assert [(r["entity"], r["reason"]) for r in rows] == [
        ("dataset_config", "hub_error"),
        ("task", "unknown_field"),
    ]
    assert (
        rows[1]["instruction"] == "Answer from the passage." and "'passage'" in rows[1]["message"]
    )


def test_rejection_views_cover_dataset_level_skips(query) -> None:
    reasons = {(r["entity"], r["reason"]) for r in query("rejections_by_reason")}
    assert ("hub_dataset", "no_license") in reasons and ("task", "unknown_field") in reasons


def test_cost_and_growth_add_up(query) -> None:
    cost = query("cost_per_batch")
    assert [c["version"] for c in cost] == [1, 2]
    assert float(cost[-1]["total_cost_usd"]) == pytest.approx(0.002)
    assert float(cost[0]["usd_per_instance"]) == pytest.approx(0.001 / 10)
    growth = query("growth_over_time")
    assert [(g["new_instances"], g["total_instances"]) for g in growth] == [(10, 10), (12, 22)]


def test_reader_role_cannot_read_base_tables(populated: Engine, reader_role: str) -> None:
    with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
        run_as_reader(populated, reader_role, "SELECT count(*) FROM task_lsh", {})
