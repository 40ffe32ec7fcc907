"""What a DAG run tells the people who run it: a run note with the batch's summary and the
report's path, one log line when a run fails (and, if configured, a webhook notification), and
the sum of a dry run's estimates.

- Run notes are written through Airflow's REST API when the ``dynosaur_airflow_api``
  connection is defined (host = the API server's URL, login and password of a user allowed to
  edit runs), else straight into the metadata database where this process may use it
  (``dag.test``, ``dynosaur demo``). Where neither works, the note is only logged.
- The webhook: the ``dynosaur_notify`` connection (``host`` = the full URL to POST JSON to,
  e.g. ``AIRFLOW_CONN_DYNOSAUR_NOTIFY='{"conn_type": "http", "host": "https://..."}'``); undefined
  (the default), nothing is sent. Its URL is never logged.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from dynosaur.redact import redact

log = logging.getLogger("dynosaur.dag")

API_CONN_ID = "dynosaur_airflow_api"
NOTIFY_CONN_ID = "dynosaur_notify"

# The additive figures of a dry run's generate summaries (see dynosaur.generate.estimate).
ESTIMATE_FIGURES = (
    "configs",
    "calls_to_send",
    "calls_reused",
    "tokens_in_estimate",
    "tokens_out_estimate",
    "cost_usd_estimate",
    "cost_usd_max",
)


def sum_estimates(generated: Iterable[Mapping[str, Any] | None]) -> dict[str, Any]:
    """One estimate for a dry run: the sum of every mapped generate task's figures."""
    total: dict[str, Any] = dict.fromkeys(ESTIMATE_FIGURES, 0)
    chunks = 0
    for summary in generated:
        if not summary:
            continue
        chunks += 1
        figures = summary.get("figures", {})
        for key in ESTIMATE_FIGURES:
            value = figures.get(key)
            if isinstance(value, int | float):
                total[key] += value
    for key in ("cost_usd_estimate", "cost_usd_max"):
        total[key] = round(total[key], 6)
    total["chunks"] = chunks
    return total


def estimate_line(total: Mapping[str, Any]) -> str:
    """The dry run's estimate in one line (task log and run note)."""
    return (
        f"dry run estimate: {total['configs']} configs, {total['calls_to_send']} LLM calls to "
        f"send ({total['calls_reused']} reused), ~{total['tokens_in_estimate']:,} prompt + "
        f"~{total['tokens_out_estimate']:,} completion tokens, ~${total['cost_usd_estimate']:.4f} "
        f"(at most ${total['cost_usd_max']:.4f})"
    )


def report_path(export_root: Path, version: int) -> Path:
    """Where the export DAG writes the growth report of ``version``."""
    from dynosaur.report import REPORT_FILE

    return export_root / f"v{version}" / REPORT_FILE


def growth_note(summary: Mapping[str, Any] | None, export_root: Path) -> str:
    """The run note of a growth run, from :func:`dynosaur.store.report.run_summary`."""
    if summary is None:
        return "This run opened no batch of its own: nothing new was built (see the task logs)."
    s = summary
    if s["status"] == "published":
        head = f"**Version {s['version']} published** (batch {s['batch_id']}, `{s['run_key']}`)"
    else:
        why = f": {s['reason']}" if s.get("reason") else ""
        head = f"**Batch {s['batch_id']} {s['status']}**{why} (`{s['run_key']}`)"
    lines = [
        head,
        "",
        f"- {s['datasets']} datasets, {s['configs']} configs, {s['tasks_valid']} valid tasks, "
        f"{s['tasks_rejected']} rejected, {s['instances']:,} instances",
        f"- LLM: {s['llm_calls']} calls, ${s['cost_usd']:.4f}",
    ]
    if s.get("total_instances") is not None:
        lines.append(
            f"- collection now: {s['total_instances']:,} instances, {s['total_tasks']:,} valid "
            f"tasks, {s['total_datasets']:,} datasets"
        )
        lines.append(
            f"- report: `{report_path(export_root, s['version'])}` (written by dynosaur_export)"
        )
    return "\n".join(lines)


def _connection(conn_id: str) -> Any | None:
    from dynosaur.airflow.connections import _connection as get

    return get(conn_id)


def set_run_note(dag_id: str, run_id: str, note: str) -> str:
    """Set the note of a DAG run; returns how (``api``, ``metadata``, or ``log`` when neither
    was possible: then the note is only in the log)."""
    api = _connection(API_CONN_ID)
    if api is not None:
        try:
            _note_through_api(api, dag_id, run_id, note)
            return "api"
        except Exception as exc:  # a note must never fail a run
            log.warning("could not set the run note through the API: %s", redact(str(exc)))
    else:
        try:
            from airflow.models.dagrun import DagRun
            from airflow.utils.session import create_session
            from sqlalchemy import select

            with create_session() as session:
                run = session.scalar(
                    select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)
                )
                if run is not None:
                    run.note = note
                    return "metadata"
        except Exception as exc:  # no metadata access here (a component without the DB)
            log.info("no metadata database here for the run note (%s)", type(exc).__name__)
    log.info("run note of %s: %s", run_id, note.replace("\n", " "))
    return "log"


def _note_through_api(conn: Any, dag_id: str, run_id: str, note: str) -> None:
    import httpx

    base = conn.host if "://" in conn.host else f"http://{conn.host}"
    if conn.port:
        base = f"{base}:{conn.port}"
    with httpx.Client(base_url=base.rstrip("/"), timeout=30) as client:
        token = client.post("/auth/token", json={"username": conn.login, "password": conn.password})
        token.raise_for_status()
        client.patch(
            f"/api/v2/dags/{dag_id}/dagRuns/{run_id}",
            params={"update_mask": "note"},
            json={"note": note},
            headers={"Authorization": f"Bearer {token.json()['access_token']}"},
        ).raise_for_status()


def notify(line: str, payload: Mapping[str, Any]) -> bool:
    """POST ``payload`` (with ``text`` = ``line``) to the ``dynosaur_notify`` webhook, if one is
    configured; True when it accepted it. Failures are logged, never raised."""
    conn = _connection(NOTIFY_CONN_ID)
    if conn is None or not conn.host:
        return False
    import httpx

    url = conn.host if "://" in conn.host else f"https://{conn.host}"
    try:
        httpx.post(url, json={"text": line, **payload}, timeout=30).raise_for_status()
    except Exception as exc:
        log.warning("the failure webhook (%s) did not accept the notification: %s",
                    NOTIFY_CONN_ID, type(exc).__name__)  # fmt: skip
        return False
    log.info("notified the %s webhook", NOTIFY_CONN_ID)
    return True


def failure_line(context: Mapping[str, Any]) -> str:
    """One line that says which run failed, where and why."""
    dag = context.get("dag")
    dag_id = getattr(dag, "dag_id", "?")
    ti = context.get("ti")
    task = f" at task {ti.task_id}" if ti is not None and getattr(ti, "task_id", None) else ""
    reason = context.get("reason") or "a task failed"
    return f"{dag_id} run {context.get('run_id')} failed{task}: {redact(str(reason))}"


def on_run_failure(context: Mapping[str, Any]) -> None:
    """The DAGs' failure callback: one summary line in the log, the webhook if configured, and
    (for the growth DAG) the run note."""
    line = failure_line(context)
    log.error("%s", line)
    dag_id = getattr(context.get("dag"), "dag_id", "")
    notify(line, {"dag_id": dag_id, "run_id": context.get("run_id"), "state": "failed"})
    if dag_id == "dynosaur_growth":
        write_growth_note(context)


def on_run_success(context: Mapping[str, Any]) -> None:
    """The growth DAG's success callback: the run note with the batch's summary (a dry run's
    note, its estimate, is set by its ``estimate`` task)."""
    if (context.get("params") or {}).get("dry_run"):
        return
    write_growth_note(context)


def write_growth_note(context: Mapping[str, Any]) -> str:
    """Write the growth run's note (the batch's figures and the report's path); returns it."""
    from dynosaur.airflow.connections import settings_and_store
    from dynosaur.store.report import run_summary

    run_id = str(context.get("run_id"))
    dag_id = getattr(context.get("dag"), "dag_id", "dynosaur_growth")
    try:
        settings, engine = settings_and_store()
        note = growth_note(run_summary(engine, run_id), settings.export_root)
    except Exception as exc:  # the store is down: say so in the note, never fail the callback
        note = f"The run's summary could not be read from the store: {redact(str(exc))}"
    set_run_note(dag_id, run_id, note)
    return note


def dry_run_estimate(
    run: Mapping[str, Any], generated: Iterable[Mapping[str, Any] | None], context: Any
) -> dict[str, Any] | None:
    """The ``estimate`` task of the growth DAG: None unless the run is a dry run; else the
    summed estimate, logged in one line and set as the run's note."""
    if run.get("already_done") or not run["request"].get("dry_run"):
        return None
    total = sum_estimates(generated)
    line = estimate_line(total)
    log.info("%s", line)
    dag_run = context["dag_run"]
    set_run_note(
        dag_run.dag_id, dag_run.run_id, f"**Dry run**: nothing curated or published.\n\n- {line}"
    )
    return total
