"""The LLM call ledger's rules: one ``llm_call`` row per distinct request, the cache that makes
re-runs free and the lock that stops two workers from sending the same request at once.

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

The SQL is in :mod:`dynosaur.store.ledger`; this module decides.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from sqlalchemy.engine import Engine

from dynosaur.settings import Settings
from dynosaur.store import ledger as store
from dynosaur.store.ledger import CallRecord, ClaimRow

HOST = socket.gethostname()

# Claim tokens held by live workers of this process (tells our own claims from a dead
# predecessor's that ran under the same pid).
_live_tokens: set[str] = set()
_live_lock = threading.Lock()


def request_hash(
    model: str,
    messages: Sequence[dict[str, Any]],
    parameters: dict[str, Any],
    prompt_version: str,
    *,
    attempt: int = 0,
) -> str:
    """sha256 over the canonical JSON of everything that determines the answer.

    ``attempt`` numbers the requests of one prompt after unusable answers (0: the first). It is
    hashed only when above 0, so first requests keep the hashes they always had; a later attempt
    is a distinct ledger row even if its messages were the same.
    """
    payload: dict[str, Any] = {
        "model": model,
        "messages": list(messages),
        "parameters": parameters,
        "prompt_version": prompt_version,
    }
    if attempt > 0:
        payload["answer_attempt"] = attempt
    canonical = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def lease_seconds(settings: Settings) -> float:
    """How long an in-flight claim is honoured: twice the longest a call's attempts can last."""
    attempts = settings.llm_max_retries + 1
    return 2.0 * attempts * (settings.llm_timeout_s + settings.llm_backoff_max_s)


@dataclass(frozen=True)
class CallRequest:
    """Everything needed to send (and to identify) one request."""

    request_hash: str
    model: str
    messages: tuple[dict[str, Any], ...]
    parameters: dict[str, Any]
    prompt_version: str
    attempt: int = 0  # requests of this prompt sent before, whose answers were unusable


@dataclass(frozen=True)
class Claim:
    """The outcome of a claim: ours to send, an answer to reuse, someone else's, or no budget."""

    kind: Literal["claimed", "reuse", "busy", "budget"]
    call_id: int | None = None
    token: str | None = None
    record: CallRecord | None = None
    spent_usd: float = 0.0


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
    """Claims and lookups on the ledger for one process."""

    def __init__(self, engine: Engine, *, lease_s: float) -> None:
        self.engine = engine
        self.lease_s = lease_s
        self.claimer = claimer_id()

    def succeeded(self, hashes: Iterable[str]) -> dict[str, CallRecord]:
        """The succeeded rows among ``hashes``, by hash (one query)."""
        return store.succeeded(self.engine, hashes)

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
                store.lock_run_budget(conn, run_key)
            rows = store.lock_calls(conn, [request.request_hash for request, _ in requests])
            spent = store.run_spend(conn, run_key) if budget_usd is not None else 0.0
            claims: list[Claim | None] = []
            fresh: list[ClaimRow] = []
            taken: list[ClaimRow] = []
            over_budget = False
            for request, reserve in requests:
                row = rows.get(request.request_hash)
                if row is not None and row.status == "succeeded":
                    claims.append(Claim("reuse", call_id=row.id, record=row.record))
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
                    credit = row.reserved_usd if row.status == "in_flight" else row.cost_usd
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
                claim_row = ClaimRow(
                    request_hash=request.request_hash,
                    model=request.model,
                    parameters=request.parameters,
                    prompt_version=request.prompt_version,
                    messages=list(request.messages),
                    reserved_usd=reserve,
                    token=token,
                    call_id=row.id if row is not None else None,
                )
                (fresh if row is None else taken).append(claim_row)
                claims.append(None)  # filled in by claim_many
            ids = store.insert_claims(conn, fresh, run_key=run_key, claimed_by=self.claimer)
            store.take_over(conn, taken, run_key=run_key, claimed_by=self.claimer)
            ids.update({t.request_hash: t.call_id for t in taken if t.call_id is not None})
        return ids, claims, {c.request_hash: c.token for c in fresh + taken}
