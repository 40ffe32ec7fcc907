"""The store side of the LLM call ledger: every SQL statement on ``llm_call``.

The claiming rules (when a row may be taken, the budget arithmetic, stale claims) live in
:mod:`dynosaur.generate.ledger`, which calls these functions inside one transaction: it locks the
run's budget and the requested rows (:func:`lock_run_budget`, :func:`lock_calls`), reads the
run's spend (:func:`run_spend`), then inserts or takes over the rows it may claim
(:func:`insert_claims`, :func:`take_over`). Answers and failures are written on the claimer's own
claim only (``claim_token``), so a late report of a worker whose claim was taken over changes
nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

_RECORD_COLUMNS = (
    "id",
    "request_hash",
    "response",
    "finish_reason",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "notes",
)
_RECORD = ", ".join(_RECORD_COLUMNS)


@dataclass(frozen=True)
class CallRecord:
    """A succeeded ledger row: the answer and what it cost."""

    id: int
    request_hash: str
    response: str
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    cost_usd: float
    notes: tuple[str, ...] = field(default_factory=tuple)


def _record(row: Any) -> CallRecord:
    return CallRecord(
        id=row.id,
        request_hash=row.request_hash,
        response=row.response,
        finish_reason=row.finish_reason,
        prompt_tokens=row.prompt_tokens,
        completion_tokens=row.completion_tokens,
        cost_usd=float(row.cost_usd or 0),
        notes=tuple(row.notes or ()),
    )


def succeeded(engine: Engine, hashes: Iterable[str]) -> dict[str, CallRecord]:
    """The succeeded rows among ``hashes``, by hash (one query)."""
    wanted = list(set(hashes))
    if not wanted:
        return {}
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                f"SELECT {_RECORD} FROM llm_call "
                "WHERE request_hash = ANY(:h) AND status = 'succeeded'"
            ),
            {"h": wanted},
        )
        return {row.request_hash: _record(row) for row in rows}


def mean_completion_tokens(engine: Engine, model: str) -> float | None:
    """The model's average answer length over its succeeded calls (None before the first)."""
    with engine.connect() as conn:
        value = conn.execute(
            sa.text(
                "SELECT avg(completion_tokens) FROM llm_call "
                "WHERE model = :m AND status = 'succeeded'"
            ),
            {"m": model},
        ).scalar()
    return float(value) if value is not None else None


# --- claims (inside the claimer's transaction) ----------------------------------------------------


@dataclass(frozen=True)
class LockedCall:
    """A ledger row locked for a claim decision, with the database's clock."""

    id: int
    status: str
    run_key: str | None
    reserved_usd: float
    cost_usd: float
    claimed_by: str | None
    claim_token: str | None
    claimed_at: datetime
    db_now: datetime
    record: CallRecord


@dataclass(frozen=True)
class ClaimRow:
    """What a claim writes: the request, its reservation and the claim's token."""

    request_hash: str
    model: str
    parameters: dict[str, Any]
    prompt_version: str
    messages: list[dict[str, Any]]
    reserved_usd: float
    token: str
    call_id: int | None = None  # set when an existing row is taken over


def lock_run_budget(conn: Connection, run_key: str) -> None:
    """Serialise the budget checks of one run across processes (until the transaction ends)."""
    conn.execute(
        sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"),
        {"k": f"dynosaur.budget:{run_key}"},
    )


def lock_calls(conn: Connection, hashes: Sequence[str]) -> dict[str, LockedCall]:
    """The existing rows of ``hashes``, locked (in id order) until the transaction ends."""
    rows = conn.execute(
        sa.text(
            f"SELECT {_RECORD}, status, claimed_by, claim_token, claimed_at, run_key, "
            "reserved_usd, now() AS db_now FROM llm_call WHERE request_hash = ANY(:h) "
            "ORDER BY id FOR UPDATE"
        ),
        {"h": list(hashes)},
    )
    return {
        row.request_hash: LockedCall(
            id=row.id,
            status=row.status,
            run_key=row.run_key,
            reserved_usd=float(row.reserved_usd or 0),
            cost_usd=float(row.cost_usd or 0),
            claimed_by=row.claimed_by,
            claim_token=row.claim_token,
            claimed_at=row.claimed_at,
            db_now=row.db_now,
            record=_record(row),
        )
        for row in rows
    }


def run_spend(conn: Connection, run_key: str) -> float:
    """What a run has spent: its finished calls' costs plus its in-flight reservations."""
    return float(
        conn.execute(
            sa.text(
                "SELECT coalesce(sum(CASE WHEN status = 'in_flight' "
                "THEN reserved_usd ELSE cost_usd END), 0) FROM llm_call WHERE run_key = :rk"
            ),
            {"rk": run_key},
        ).scalar_one()
    )


def _claim_json(rows: Sequence[ClaimRow]) -> str:
    return json.dumps(
        [
            {
                "call_id": row.call_id,
                "request_hash": row.request_hash,
                "model": row.model,
                "parameters": row.parameters,
                "prompt_version": row.prompt_version,
                "messages": row.messages,
                "reserved_usd": row.reserved_usd,
                "token": row.token,
            }
            for row in rows
        ],
        ensure_ascii=False,
    )


def insert_claims(
    conn: Connection, rows: Sequence[ClaimRow], *, run_key: str, claimed_by: str
) -> dict[str, int]:
    """Insert new ``in_flight`` rows; returns the id of each row inserted, by hash (a hash that
    another transaction inserted first is missing: its claim is lost)."""
    if not rows:
        return {}
    inserted = conn.execute(
        sa.text(
            "INSERT INTO llm_call (request_hash, model, parameters, prompt_version, messages, "
            "status, run_key, reserved_usd, claim_token, claimed_by, claimed_at) "
            "SELECT x.request_hash, x.model, x.parameters, x.prompt_version, x.messages, "
            "'in_flight', :rk, x.reserved_usd, x.token, :by, now() "
            "FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS x(request_hash text, model text, "
            "parameters jsonb, prompt_version text, messages jsonb, reserved_usd numeric, "
            "token text) ON CONFLICT (request_hash) DO NOTHING RETURNING request_hash, id"
        ),
        {"rows": _claim_json(rows), "rk": run_key, "by": claimed_by},
    )
    return {row.request_hash: row.id for row in inserted}


def take_over(conn: Connection, rows: Sequence[ClaimRow], *, run_key: str, claimed_by: str) -> None:
    """Make locked rows (``call_id`` set) ``in_flight`` again under new claims."""
    if not rows:
        return
    conn.execute(
        sa.text(
            "UPDATE llm_call c SET status = 'in_flight', model = x.model, "
            "parameters = x.parameters, prompt_version = x.prompt_version, "
            "messages = x.messages, run_key = :rk, reserved_usd = x.reserved_usd, "
            "claim_token = x.token, claimed_by = :by, claimed_at = now(), attempts = 0, "
            "reason = NULL, message = NULL, finished_at = NULL "
            "FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS x(call_id bigint, model text, "
            "parameters jsonb, prompt_version text, messages jsonb, reserved_usd numeric, "
            "token text) WHERE c.id = x.call_id"
        ),
        {"rows": _claim_json(rows), "rk": run_key, "by": claimed_by},
    )


# --- outcomes -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answered:
    """What the ledger stores about one answer."""

    call_id: int
    response: str
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    latency_ms: int
    attempts: int
    notes: tuple[str, ...] = ()


def mark_succeeded_many(conn: Connection, answers: Sequence[Answered]) -> dict[int, CallRecord]:
    """Store answers (one statement); returns the stored record of each call id, which is
    another worker's when its answer was stored first."""
    if not answers:
        return {}
    rows = [
        {
            "id": a.call_id,
            "response": a.response,
            "finish": a.finish_reason,
            "pt": a.prompt_tokens,
            "ct": a.completion_tokens,
            "cost": a.cost_usd,
            "latency": a.latency_ms,
            "attempts": a.attempts,
            "notes": list(a.notes),
        }
        for a in answers
    ]
    columns = ", ".join(f"c.{name}" for name in _RECORD_COLUMNS)
    stored = {
        row.id: _record(row)
        for row in conn.execute(
            sa.text(
                "UPDATE llm_call c SET status = 'succeeded', response = x.response, "
                "finish_reason = x.finish, prompt_tokens = x.pt, completion_tokens = x.ct, "
                "cost_usd = x.cost, latency_ms = x.latency, attempts = x.attempts, "
                "notes = x.notes, reason = NULL, message = NULL, reserved_usd = 0, "
                "finished_at = now() FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS x("
                "id bigint, response text, finish text, pt integer, ct integer, cost numeric, "
                "latency integer, attempts integer, notes text[]) "
                f"WHERE c.id = x.id AND c.status <> 'succeeded' RETURNING {columns}"
            ),
            {"rows": json.dumps(rows, ensure_ascii=False)},
        )
    }
    missing = [a.call_id for a in answers if a.call_id not in stored]
    if missing:
        for row in conn.execute(
            sa.text(f"SELECT {_RECORD} FROM llm_call WHERE id = ANY(:ids)"), {"ids": missing}
        ):
            stored[row.id] = _record(row)
    return stored


def mark_succeeded(conn: Connection, answer: Answered) -> CallRecord:
    """Store one answer (see :func:`mark_succeeded_many`)."""
    return mark_succeeded_many(conn, [answer])[answer.call_id]


def mark_failed(
    conn: Connection, call_id: int, token: str, *, reason: str, message: str, attempts: int
) -> None:
    """Record a failure on our own claim (a claim taken over by another worker is left alone)."""
    conn.execute(
        sa.text(
            "UPDATE llm_call SET status = 'failed', reason = :reason, message = :message, "
            "attempts = :attempts, reserved_usd = 0, finished_at = now() "
            "WHERE id = :id AND claim_token = :token AND status = 'in_flight'"
        ),
        {"id": call_id, "token": token, "reason": reason, "message": message, "attempts": attempts},
    )


def release_claim(conn: Connection, call_id: int, token: str, *, reason: str) -> None:
    """Give back our claim of a call that was never sent (a later run may claim it at once)."""
    conn.execute(
        sa.text(
            "UPDATE llm_call SET status = 'failed', reason = :reason, "
            "message = 'not sent: the run stopped', reserved_usd = 0, finished_at = now() "
            "WHERE id = :id AND claim_token = :token AND status = 'in_flight'"
        ),
        {"id": call_id, "token": token, "reason": reason},
    )
