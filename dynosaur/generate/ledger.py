"""The LLM call ledger (``llm_call``): one row per distinct request, the cache that makes re-runs
free and the lock that stops two workers from sending the same request at once.

A request is identified by ``request_hash`` (sha256 over model, messages, parameters and prompt
version). Before sending, a worker *claims* the request: a ``succeeded`` row is reused (never sent
again); a fresh ``in_flight`` row belongs to another worker; otherwise (no row, a ``failed`` row, or
a stale ``in_flight`` row) the worker inserts or takes over the row as ``in_flight`` with its own
claim token, in one transaction. An ``in_flight`` row is stale when its claim is older than the
lease (longer than any attempt sequence can last), or when its claimer ran on this host and that
process is gone. Re-claiming a stale row is the only way a request can be sent again after an
answer might have been received.

The budget check is part of the claim: under a per-run advisory lock, the run's spend (cost of its
finished calls plus the reservation of its calls in flight) plus this call's reservation must stay
within the budget, across every process that works for the same run.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

HOST = socket.gethostname()

# Claim tokens held by live workers of this process (tells our own claims from a dead
# predecessor's that ran under the same pid).
_live_tokens: set[str] = set()
_live_lock = threading.Lock()


def request_hash(
    model: str, messages: Sequence[dict[str, Any]], parameters: dict[str, Any], prompt_version: str
) -> str:
    """sha256 over the canonical JSON of everything that determines the answer."""
    payload = {
        "model": model,
        "messages": list(messages),
        "parameters": parameters,
        "prompt_version": prompt_version,
    }
    canonical = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CallRequest:
    """Everything needed to send (and to identify) one request."""

    request_hash: str
    model: str
    messages: tuple[dict[str, Any], ...]
    parameters: dict[str, Any]
    prompt_version: str


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


@dataclass(frozen=True)
class Claim:
    """The outcome of a claim: ours to send, an answer to reuse, someone else's, or no budget."""

    kind: Literal["claimed", "reuse", "busy", "budget"]
    call_id: int | None = None
    token: str | None = None
    record: CallRecord | None = None
    spent_usd: float = 0.0


_RECORD_COLUMNS = (
    "id, request_hash, response, finish_reason, prompt_tokens, completion_tokens, cost_usd, notes"
)


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


def claimer_id() -> str:
    """``host:pid`` of this process, stored in ``claimed_by``."""
    return f"{HOST}:{os.getpid()}"


def process_alive(pid: int) -> bool:
    """Whether a process with this pid runs on this host (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def release_token(token: str | None) -> None:
    """Forget a claim token once its call is recorded."""
    if token:
        with _live_lock:
            _live_tokens.discard(token)


class Ledger:
    """Claims and lookups on ``llm_call`` for one process."""

    def __init__(self, engine: Engine, *, lease_s: float) -> None:
        self.engine = engine
        self.lease_s = lease_s
        self.claimer = claimer_id()

    def succeeded(self, hashes: Iterable[str]) -> dict[str, CallRecord]:
        """The succeeded rows among ``hashes``, by hash (one query)."""
        hashes = list(set(hashes))
        if not hashes:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    f"SELECT {_RECORD_COLUMNS} FROM llm_call "
                    "WHERE request_hash = ANY(:h) AND status = 'succeeded'"
                ),
                {"h": hashes},
            )
            return {row.request_hash: _record(row) for row in rows}

    def is_stale(
        self, claimed_by: str | None, token: str | None, claimed_at: datetime, now: datetime
    ) -> bool:
        """Whether an in-flight claim may be taken over (see the module docstring)."""
        if (now - claimed_at).total_seconds() > self.lease_s:
            return True
        host, _, pid_text = (claimed_by or "").rpartition(":")
        if host != HOST or not pid_text.isdigit():
            return False  # another host's claim: only the lease can expire it
        pid = int(pid_text)
        if pid == os.getpid():
            with _live_lock:
                return token not in _live_tokens
        return not process_alive(pid)

    def claim(
        self,
        request: CallRequest,
        *,
        run_key: str,
        reserve_usd: float,
        budget_usd: float | None,
    ) -> Claim:
        """Claim ``request`` for sending, or say why not (see :class:`Claim`)."""
        return self.claim_many([(request, reserve_usd)], run_key=run_key, budget_usd=budget_usd)[0]

    def claim_many(
        self,
        requests: Sequence[tuple[CallRequest, float]],
        *,
        run_key: str,
        budget_usd: float | None,
    ) -> list[Claim]:
        """Claim several (request, reservation) pairs in one transaction, in order.

        Once one request does not fit the budget, none after it is claimed either: when the
        budget is reached, no new call starts. A request that another process inserted at the
        same moment comes back ``busy`` (ask again: it is then visible).
        """
        pending_tokens: list[str] = []
        try:
            ids, claims, tokens = self._claim_in_transaction(
                requests, run_key=run_key, budget_usd=budget_usd, pending_tokens=pending_tokens
            )
        except BaseException:
            for token in pending_tokens:
                release_token(token)
            raise
        out: list[Claim] = []
        for (request, _), claim in zip(requests, claims, strict=True):
            if claim is not None:
                out.append(claim)
            elif request.request_hash in ids:
                out.append(
                    Claim(
                        "claimed",
                        call_id=ids[request.request_hash],
                        token=tokens[request.request_hash],
                    )
                )
            else:  # lost the insert race to another process
                release_token(tokens[request.request_hash])
                out.append(Claim("busy"))
        return out

    def _claim_in_transaction(
        self,
        requests: Sequence[tuple[CallRequest, float]],
        *,
        run_key: str,
        budget_usd: float | None,
        pending_tokens: list[str],
    ) -> tuple[dict[str, int], list[Claim | None], dict[str, str]]:
        with self.engine.begin() as conn:
            if budget_usd is not None:
                conn.execute(
                    sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"),
                    {"k": f"dynosaur.budget:{run_key}"},
                )
            hashes = [request.request_hash for request, _ in requests]
            rows = {
                row.request_hash: row
                for row in conn.execute(
                    sa.text(
                        f"SELECT {_RECORD_COLUMNS}, status, claimed_by, claim_token, claimed_at, "
                        "run_key, reserved_usd, now() AS db_now FROM llm_call "
                        "WHERE request_hash = ANY(:h) "
                        "ORDER BY id FOR UPDATE"
                    ),
                    {"h": hashes},
                )
            }
            spent = 0.0
            if budget_usd is not None:
                spent = float(
                    conn.execute(
                        sa.text(
                            "SELECT coalesce(sum(CASE WHEN status = 'in_flight' "
                            "THEN reserved_usd ELSE cost_usd END), 0) FROM llm_call "
                            "WHERE run_key = :rk"
                        ),
                        {"rk": run_key},
                    ).scalar_one()
                )
            claims: list[Claim | None] = []
            fresh: list[dict[str, Any]] = []
            taken: list[dict[str, Any]] = []
            over_budget = False
            for request, reserve in requests:
                row = rows.get(request.request_hash)
                if row is not None and row.status == "succeeded":
                    claims.append(Claim("reuse", call_id=row.id, record=_record(row)))
                    continue
                if (
                    row is not None
                    and row.status == "in_flight"
                    and not self.is_stale(
                        row.claimed_by, row.claim_token, row.claimed_at, row.db_now
                    )
                ):
                    claims.append(Claim("busy", call_id=row.id))
                    continue
                # A row taken over from this run itself: its old share is replaced by the new one.
                credit = 0.0
                if row is not None and row.run_key == run_key:
                    credit = float(row.reserved_usd if row.status == "in_flight" else row.cost_usd)
                if budget_usd is not None and (
                    over_budget or spent - credit + reserve > budget_usd
                ):
                    over_budget = True
                    claims.append(Claim("budget", spent_usd=spent))
                    continue
                spent += reserve - credit
                token = uuid.uuid4().hex
                # Registered before the commit: once the row is visible, a claim by another thread
                # of this process must already see it as live, not as a dead predecessor's.
                with _live_lock:
                    _live_tokens.add(token)
                pending_tokens.append(token)
                values = {
                    "h": request.request_hash,
                    "model": request.model,
                    "parameters": request.parameters,
                    "version": request.prompt_version,
                    "messages": list(request.messages),
                    "reserved": reserve,
                    "token": token,
                }
                if row is None:
                    fresh.append(values)
                else:
                    taken.append({**values, "id": row.id})
                claims.append(None)  # filled in below
            ids = self._insert(conn, fresh, run_key) if fresh else {}
            if taken:
                self._take_over(conn, taken, run_key)
                ids.update({t["h"]: t["id"] for t in taken})
        return ids, claims, {v["h"]: v["token"] for v in fresh + taken}

    def _insert(self, conn: Connection, rows: list[dict[str, Any]], run_key: str) -> dict[str, int]:
        inserted = conn.execute(
            sa.text(
                "INSERT INTO llm_call (request_hash, model, parameters, prompt_version, messages, "
                "status, run_key, reserved_usd, claim_token, claimed_by, claimed_at) "
                "SELECT x.h, x.model, x.parameters, x.version, x.messages, 'in_flight', :rk, "
                "x.reserved, x.token, :by, now() FROM jsonb_to_recordset(CAST(:rows AS jsonb)) "
                "AS x(h text, model text, parameters jsonb, version text, messages jsonb, "
                "reserved numeric, token text) "
                "ON CONFLICT (request_hash) DO NOTHING RETURNING request_hash, id"
            ),
            {"rows": json.dumps(rows, ensure_ascii=False), "rk": run_key, "by": self.claimer},
        )
        return {row.request_hash: row.id for row in inserted}

    def _take_over(self, conn: Connection, rows: list[dict[str, Any]], run_key: str) -> None:
        conn.execute(
            sa.text(
                "UPDATE llm_call c SET status = 'in_flight', model = x.model, "
                "parameters = x.parameters, prompt_version = x.version, messages = x.messages, "
                "run_key = :rk, reserved_usd = x.reserved, claim_token = x.token, "
                "claimed_by = :by, claimed_at = now(), attempts = 0, error = NULL, "
                "message = NULL, finished_at = NULL "
                "FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS x(id bigint, model text, "
                "parameters jsonb, version text, messages jsonb, reserved numeric, token text) "
                "WHERE c.id = x.id"
            ),
            {"rows": json.dumps(rows, ensure_ascii=False), "rk": run_key, "by": self.claimer},
        )


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
    columns = ", ".join(f"c.{name.strip()}" for name in _RECORD_COLUMNS.split(","))
    stored = {
        row.id: _record(row)
        for row in conn.execute(
            sa.text(
                "UPDATE llm_call c SET status = 'succeeded', response = x.response, "
                "finish_reason = x.finish, prompt_tokens = x.pt, completion_tokens = x.ct, "
                "cost_usd = x.cost, latency_ms = x.latency, attempts = x.attempts, "
                "notes = x.notes, error = NULL, message = NULL, reserved_usd = 0, "
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
            sa.text(f"SELECT {_RECORD_COLUMNS} FROM llm_call WHERE id = ANY(:ids)"),
            {"ids": missing},
        ):
            stored[row.id] = _record(row)
    return stored


def mark_succeeded(
    conn: Connection,
    call_id: int,
    *,
    response: str,
    finish_reason: str | None,
    prompt_tokens: int,
    completion_tokens: int,
    cost_usd: float,
    latency_ms: int,
    attempts: int,
    notes: Sequence[str],
) -> CallRecord:
    """Store one answer (see :func:`mark_succeeded_many`)."""
    answer = Answered(
        call_id,
        response,
        finish_reason,
        prompt_tokens,
        completion_tokens,
        cost_usd,
        latency_ms,
        attempts,
        tuple(notes),
    )
    return mark_succeeded_many(conn, [answer])[call_id]


def mark_failed(
    conn: Connection, call_id: int, token: str, *, reason: str, message: str, attempts: int
) -> None:
    """Record a failure on our own claim (a claim taken over by another worker is left alone)."""
    conn.execute(
        sa.text(
            "UPDATE llm_call SET status = 'failed', error = :reason, message = :message, "
            "attempts = :attempts, reserved_usd = 0, finished_at = now() "
            "WHERE id = :id AND claim_token = :token AND status = 'in_flight'"
        ),
        {"id": call_id, "token": token, "reason": reason, "message": message, "attempts": attempts},
    )


def release_claim(conn: Connection, call_id: int, token: str) -> None:
    """Give back our claim of a call that was never sent (a later run may claim it at once)."""
    conn.execute(
        sa.text(
            "UPDATE llm_call SET status = 'failed', error = 'llm_auth_error', "
            "message = 'not sent: the run stopped', reserved_usd = 0, finished_at = now() "
            "WHERE id = :id AND claim_token = :token AND status = 'in_flight'"
        ),
        {"id": call_id, "token": token},
    )
