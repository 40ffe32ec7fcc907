"""The run request: one builder for `dynosaur grow` and the growth DAG, one run key for both."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dynosaur.errors import UsageError
from dynosaur.model import Window
from dynosaur.pipeline import RunRequest, request_for, request_from_trigger, run_key_for

RUN_AFTER = datetime(2024, 3, 5, 7, 30, tzinfo=UTC)  # when a manual run was triggered
DAY = (datetime(2024, 3, 2, tzinfo=UTC), datetime(2024, 3, 3, tzinfo=UTC))


def trigger(params: dict, interval: tuple = (None, None)) -> RunRequest:
    """The request the growth DAG builds for a run with this form and data interval."""
    return request_from_trigger(
        params,
        interval_start=interval[0],
        interval_end=interval[1],
        run_after=RUN_AFTER,
        dag_run_id="manual__x",
    )


def test_the_same_ids_give_the_same_run_key_from_the_cli_and_from_airflow() -> None:
    cli = request_for(ids=["org/b", " org/a", "org/b"])
    dag = trigger({"dataset_ids": ["org/a", "org/b"]}, interval=DAY)
    assert cli.run_key == dag.run_key == "ids:org/a,org/b"
    # A manual run's data interval is not a window the user gave: ids alone name the run.
    assert cli.window is None and dag.window is None
    assert cli.dataset_ids == dag.dataset_ids == ["org/a", "org/b"]


def test_the_same_window_and_ids_give_the_same_run_key_from_both() -> None:
    cli = request_for(since="2024-03-01", until="2024-03-02T00:00:00Z", ids=["org/a"])
    dag = trigger(
        {"window_start": "2024-03-01T00:00:00+00:00", "window_end": "2024-03-02T00:00:00Z",
         "dataset_ids": ["org/a"]},
    )  # fmt: skip
    expected = "window:2024-03-01T00:00:00+00:00/2024-03-02T00:00:00+00:00|ids:org/a"
    assert cli.run_key == dag.run_key == expected


def test_a_scheduled_run_is_the_day_dynosaur_grow_covers() -> None:
    dag = trigger({"dataset_ids": []}, interval=DAY)
    cli = request_for(day="2024-03-02")
    assert dag.window == cli.window == Window(*DAY)
    assert dag.run_key == cli.run_key == f"window:{Window(*DAY).key()}"


def test_without_window_or_ids_a_run_covers_the_day_before_it_started() -> None:
    assert trigger({}).window == Window.day("2024-03-04")
    assert request_for(now=RUN_AFTER).window == Window.day("2024-03-04")


def test_a_given_run_key_wins_on_both_sides() -> None:
    assert request_for(ids=["org/a"], run_key="again").run_key == "again"
    assert trigger({"dataset_ids": ["org/a"], "run_key": "again"}).run_key == "again"


def test_many_ids_are_hashed_into_a_short_run_key() -> None:
    ids = [f"org/dataset-{i:04d}" for i in range(50)]
    key = run_key_for(None, ids)
    assert key.startswith("ids:sha256:") and len(key) < 100
    assert key == run_key_for(None, reversed(ids))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"window_start": "2024-03-01"}, "both ends of the window"),
        ({"window_start": "2024-03-02", "window_end": "2024-03-01"}, "invalid window"),
        ({"window_start": "yesterday", "window_end": "2024-03-01"}, "invalid window"),
        ({"max_datasets": 0}, "max datasets"),
        ({"tasks_per_config": 11}, "tasks per config"),
        ({"budget_usd": -1}, "budget"),
    ],
)
def test_both_sides_refuse_the_same_invalid_requests(params: dict, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        trigger(params)
    cli = {
        "since": params.get("window_start"),
        "until": params.get("window_end"),
        **{k: v for k, v in params.items() if not k.startswith("window_")},
    }
    with pytest.raises(UsageError, match=message):
        request_for(**cli)


def test_a_day_and_a_window_together_are_refused() -> None:
    with pytest.raises(UsageError, match="not both"):
        request_for(day="2024-03-01", since="2024-03-01", until="2024-03-02")


def test_the_request_travels_as_json_unchanged() -> None:
    req = request_for(
        since="2024-03-01", until="2024-03-02", ids=["org/a"], max_datasets=3, model="m",
        tasks_per_config=2, budget_usd=0.5, dry_run=True, dag_run_id="run-1",
    )  # fmt: skip
    assert RunRequest.from_json(req.to_json()) == req


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"window_start": 20240301, "window_end": "2024-03-02"}, "invalid window"),
        ({"max_datasets": "many"}, "max datasets must be a number"),
        ({"max_datasets": 2.5}, "whole number"),
        ({"budget_usd": "lots"}, "the budget must be a number"),
        ({"dataset_ids": 42}, "dataset ids must be a list"),
    ],
)
def test_a_rest_conf_of_the_wrong_types_is_a_usage_error(params: dict, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        trigger(params, interval=DAY)


def test_a_rest_conf_may_give_numbers_as_text_and_ids_as_one_string() -> None:
    req = trigger({"max_datasets": "5", "budget_usd": "0.5", "dataset_ids": "org/b, org/a"})
    assert (req.max_datasets, req.budget_usd, req.dataset_ids) == (5, 0.5, ["org/a", "org/b"])
