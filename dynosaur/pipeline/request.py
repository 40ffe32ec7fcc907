"""What one growth run covers: the run request, built and checked in one place.

``dynosaur grow`` builds it from its options (:func:`request_for`); the growth DAG builds it from
its trigger form and the run's data interval, given as plain values (:func:`request_from_trigger`).
Both go through the same checks and name the run the same way, so the same window or the same
explicit dataset ids give the same run key, hence the same batch, from either side.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from dynosaur.errors import UsageError
from dynosaur.model import Window, parse_utc

# Bounds of the per-run overrides (the settings' own bounds for tasks_per_config).
MAX_TASKS_PER_CONFIG = 10
# Longer id lists are hashed in the run key (batch.run_key stays short and indexable).
MAX_IDS_IN_KEY = 200


@dataclass(frozen=True)
class RunRequest:
    """What one growth run covers and how: the fields of ``dynosaur grow`` and of the DAG's
    trigger form. Build it with :func:`request_for` or :func:`request_from_trigger`."""

    window: Window | None
    dataset_ids: list[str] | None
    max_datasets: int | None
    model: str | None
    tasks_per_config: int | None
    budget_usd: float | None
    dry_run: bool
    run_key: str
    dag_run_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The request as JSON (what travels between Airflow tasks; it holds no secret)."""
        return {
            "window_start": self.window.start.isoformat() if self.window else None,
            "window_end": self.window.end.isoformat() if self.window else None,
            "dataset_ids": self.dataset_ids,
            "max_datasets": self.max_datasets,
            "model": self.model,
            "tasks_per_config": self.tasks_per_config,
            "budget_usd": self.budget_usd,
            "dry_run": self.dry_run,
            "run_key": self.run_key,
            "dag_run_id": self.dag_run_id,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunRequest:
        """The request :meth:`to_json` wrote."""
        window = (
            Window(parse_utc(data["window_start"]), parse_utc(data["window_end"]))
            if data.get("window_start")
            else None
        )
        return cls(
            window=window,
            dataset_ids=data.get("dataset_ids"),
            max_datasets=data.get("max_datasets"),
            model=data.get("model"),
            tasks_per_config=data.get("tasks_per_config"),
            budget_usd=data.get("budget_usd"),
            dry_run=bool(data.get("dry_run")),
            run_key=data["run_key"],
            dag_run_id=data.get("dag_run_id"),
        )


def run_key_for(window: Window | None, dataset_ids: Iterable[str] | None) -> str:
    """The run key: ``window:<start>/<end>`` and/or ``ids:<sorted ids>``, joined by ``|``."""
    parts = []
    if window is not None:
        parts.append(f"window:{window.key()}")
    ids = _clean_ids(dataset_ids)
    if ids:
        text = ",".join(ids)
        if len(text) > MAX_IDS_IN_KEY:
            text = "sha256:" + hashlib.sha256(text.encode()).hexdigest()
        parts.append(f"ids:{text}")
    if not parts:
        raise UsageError("a run needs a window or dataset ids")
    return "|".join(parts)


def request_for(
    *,
    since: str | datetime | None = None,
    until: str | datetime | None = None,
    day: str | datetime | None = None,
    ids: Iterable[str] | None = None,
    max_datasets: int | None = None,
    model: str | None = None,
    tasks_per_config: int | None = None,
    budget_usd: float | None = None,
    dry_run: bool = False,
    run_key: str | None = None,
    dag_run_id: str | None = None,
    now: datetime | None = None,
) -> RunRequest:
    """A checked run request from command-line style arguments.

    ``since``/``until`` give a window, ``day`` a whole UTC day. With neither, explicit ``ids``
    are the whole run (no window); with no ids either, the run covers the UTC day before ``now``
    (what the daily schedule does). The run key defaults to :func:`run_key_for`.
    """
    max_datasets = _number("max datasets", max_datasets, int)
    tasks_per_config = _number("tasks per config", tasks_per_config, int)
    budget_usd = _number("the budget", budget_usd, float)
    if isinstance(ids, str):  # a REST conf may give "a,b" where the form gives a list
        ids = ids.split(",")
    elif ids is not None and not isinstance(ids, Iterable):
        raise UsageError(f"dataset ids must be a list of Hub ids, got {ids!r}")
    if (since is None) != (until is None):
        raise UsageError(
            "give both ends of the window (--since and --until, or the trigger form's "
            "window_start and window_end), or neither"
        )
    if day is not None and since is not None:
        raise UsageError("give a day or a window (--since/--until), not both")
    clean = _clean_ids(ids)
    window: Window | None = None
    try:
        if since is not None and until is not None:
            window = Window(_utc(since), _utc(until))
        elif day is not None:
            window = Window.day(day)
        elif not clean:
            window = Window.day((now or datetime.now(UTC)) - timedelta(days=1))
    except (ValueError, TypeError, AttributeError) as exc:
        raise UsageError(f"invalid window: {exc}") from None
    if max_datasets is not None and max_datasets < 1:
        raise UsageError(f"max datasets must be at least 1, got {max_datasets}")
    if tasks_per_config is not None and not 1 <= tasks_per_config <= MAX_TASKS_PER_CONFIG:
        raise UsageError(
            f"tasks per config must be 1 to {MAX_TASKS_PER_CONFIG}, got {tasks_per_config}"
        )
    if budget_usd is not None and budget_usd < 0:
        raise UsageError(f"the budget cannot be negative, got {budget_usd}")
    return RunRequest(
        window=window,
        dataset_ids=clean or None,
        max_datasets=max_datasets,
        model=model or None,
        tasks_per_config=tasks_per_config,
        budget_usd=budget_usd,
        dry_run=dry_run,
        run_key=run_key or run_key_for(window, clean),
        dag_run_id=dag_run_id,
    )


def request_from_trigger(
    params: Mapping[str, Any],
    *,
    interval_start: datetime | None,
    interval_end: datetime | None,
    run_after: datetime,
    dag_run_id: str | None = None,
) -> RunRequest:
    """A checked run request from the growth DAG's trigger form and its run, as plain values.

    The form's window wins; else explicit ids are the whole run, as on the command line; else the
    run covers its data interval (a scheduled or backfilled run) or, for a manual run without
    one, the UTC day before ``run_after``.
    """
    since, until = params.get("window_start") or None, params.get("window_end") or None
    ids = params.get("dataset_ids") or None
    has_interval = (
        interval_start is not None and interval_end is not None and interval_start < interval_end
    )
    if since is None and until is None and not ids and has_interval:
        since, until = interval_start, interval_end
    return request_for(
        since=since,
        until=until,
        ids=ids,
        max_datasets=params.get("max_datasets"),
        model=params.get("model"),
        tasks_per_config=params.get("tasks_per_config"),
        budget_usd=params.get("budget_usd"),
        dry_run=bool(params.get("dry_run")),
        run_key=params.get("run_key") or None,
        dag_run_id=dag_run_id,
        now=run_after,
    )


def _clean_ids(ids: Iterable[str] | None) -> list[str]:
    """Ids stripped, without blanks and repeats, sorted (their order means nothing)."""
    return sorted({str(i).strip() for i in ids or () if str(i).strip()})


def _utc(value: str | datetime) -> datetime:
    if isinstance(value, str):
        return parse_utc(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    raise ValueError(f"{value!r} is not an ISO date or datetime")


def _number(what: str, value: Any, kind: type[int] | type[float]) -> Any:
    """``value`` as an int or float (a REST conf may send "5"); None stays None."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise UsageError(f"{what} must be a number, got {value!r}")
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise UsageError(f"{what} must be a number, got {value!r}") from None
    if kind is int and number != float(value):
        raise UsageError(f"{what} must be a whole number, got {value!r}")
    return number
