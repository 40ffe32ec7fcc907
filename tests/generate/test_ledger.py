"""The call ledger: request identity, claims, stale claims, reuse, and the budget check."""

from __future__ import annotations

import subprocess
import threading

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dynosaur.generate.ledger import HOST, CallRequest, Ledger, release_token, request_hash
from dynosaur.store.ledger import Answered, mark_failed, mark_succeeded

MESSAGES = ({"role": "system", "content": "s"}, {"role": "user", "content": "u"})


def _request(n: int = 0) -> CallRequest:
    messages = ({"role": "user", "content": f"prompt {n}"},)
    params = {"temperature": 0.0, "max_tokens": 64}
    digest = request_hash("m", messages, params, "v1")
    return CallRequest(digest, "m", messages, params, "v1")


def _claim(ledger: Ledger, request: CallRequest, run_key: str = "run", **kw):
    kw.setdefault("reserve_usd", 0.01)
    kw.setdefault("budget_usd", None)
    return ledger.claim(request, run_key=run_key, **kw)


def _answer(call_id: int, response: str = "[]", cost: float = 0.0) -> Answered:
    return Answered(
        call_id,
        response=response,
        finish_reason="stop",
        prompt_tokens=10,
        completion_tokens=2,
        cost_usd=cost,
        latency_ms=5,
        attempts=1,
    )


def _succeed(engine: Engine, call_id: int, cost: float = 0.0) -> None:
    with engine.begin() as conn:
        mark_succeeded(conn, _answer(call_id, cost=cost))


def _set(engine: Engine, call_id: int, **values: object) -> None:
    assignments = ", ".join(f"{k} = :{k}" for k in values)
    with engine.begin() as conn:
        conn.execute(
            sa.text(f"UPDATE llm_call SET {assignments} WHERE id = :id"), {**values, "id": call_id}
        )


def test_request_hash_covers_model_messages_parameters_and_prompt_version() -> None:
    base = request_hash("m", MESSAGES, {"temperature": 0, "max_tokens": 5}, "v1")
    assert base == request_hash("m", MESSAGES, {"max_tokens": 5, "temperature": 0}, "v1")
    variants = [
        request_hash("m2", MESSAGES, {"temperature": 0, "max_tokens": 5}, "v1"),
        request_hash("m", MESSAGES[:1], {"temperature": 0, "max_tokens": 5}, "v1"),
        request_hash("m", MESSAGES, {"temperature": 0.5, "max_tokens": 5}, "v1"),
        request_hash("m", MESSAGES, {"temperature": 0, "max_tokens": 5}, "v2"),
    ]
    assert len({base, *variants}) == 5


def test_a_succeeded_call_is_reused_and_never_claimed_again(store: Engine) -> None:
    ledger = Ledger(store, lease_s=600)
    claim = _claim(ledger, _request())
    assert claim.kind == "claimed"
    _succeed(store, claim.call_id)
    release_token(claim.token)
    again = _claim(Ledger(store, lease_s=600), _request())
    assert again.kind == "reuse" and again.record is not None and again.record.response == "[]"
    assert set(ledger.succeeded([_request().request_hash, "other"])) == {_request().request_hash}


def test_a_live_claim_of_this_process_is_busy_for_everyone_else(store: Engine) -> None:
    first = _claim(Ledger(store, lease_s=600), _request())
    assert first.kind == "claimed"
    assert _claim(Ledger(store, lease_s=600), _request()).kind == "busy"
    release_token(first.token)  # its worker is gone: the claim is now stale
    assert _claim(Ledger(store, lease_s=600), _request()).kind == "claimed"


def test_concurrent_claims_of_one_request_give_exactly_one_sender(store: Engine) -> None:
    results: list[str] = []
    barrier = threading.Barrier(6)

    def worker() -> None:
        ledger = Ledger(store, lease_s=600)
        barrier.wait()
        results.append(_claim(ledger, _request(7)).kind)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["busy"] * 5 + ["claimed"]


def test_a_claim_of_a_dead_process_on_this_host_is_taken_over(store: Engine) -> None:
    first = _claim(Ledger(store, lease_s=600), _request())
    dead = subprocess.Popen(["true"])
    dead.wait()
    _set(store, first.call_id, claimed_by=f"{HOST}:{dead.pid}")
    taken = _claim(Ledger(store, lease_s=600), _request(), run_key="second")
    assert taken.kind == "claimed" and taken.call_id == first.call_id
    assert taken.token != first.token
    # The dead worker's late failure report cannot undo the new claim.
    with store.begin() as conn:
        mark_failed(conn, first.call_id, first.token, reason="llm_timeout", message="x", attempts=1)
    with store.connect() as conn:
        row = conn.execute(sa.text("SELECT status, run_key FROM llm_call")).one()
    assert tuple(row) == ("in_flight", "second")


def test_another_hosts_claim_is_honoured_until_its_lease_expires(store: Engine) -> None:
    first = _claim(Ledger(store, lease_s=600), _request())
    _set(store, first.call_id, claimed_by="elsewhere:1")
    assert _claim(Ledger(store, lease_s=600), _request()).kind == "busy"
    with store.begin() as conn:
        conn.execute(sa.text("UPDATE llm_call SET claimed_at = now() - interval '20 minutes'"))
    assert _claim(Ledger(store, lease_s=600), _request()).kind == "claimed"


def test_a_failed_call_may_be_claimed_again(store: Engine) -> None:
    first = _claim(Ledger(store, lease_s=600), _request())
    with store.begin() as conn:
        mark_failed(
            conn, first.call_id, first.token, reason="llm_server_error", message="x", attempts=3
        )
    again = _claim(Ledger(store, lease_s=600), _request())
    assert again.kind == "claimed" and again.call_id == first.call_id


def test_budget_counts_finished_costs_and_in_flight_reservations_of_the_run(
    store: Engine,
) -> None:
    ledger = Ledger(store, lease_s=600)
    done = _claim(ledger, _request(1), budget_usd=1.0, reserve_usd=0.5)
    _succeed(store, done.call_id, cost=0.3)
    flying = _claim(ledger, _request(2), budget_usd=1.0, reserve_usd=0.5)
    assert flying.kind == "claimed"  # 0.3 spent + 0.5 reserved
    refused = _claim(ledger, _request(3), budget_usd=1.0, reserve_usd=0.5)
    assert refused.kind == "budget" and abs(refused.spent_usd - 0.8) < 1e-9
    other_run = _claim(ledger, _request(3), run_key="other", budget_usd=1.0, reserve_usd=0.5)
    assert other_run.kind == "claimed"
    assert _claim(ledger, _request(4), budget_usd=None).kind == "claimed"  # no cap


def test_a_late_success_is_kept_and_the_first_stored_answer_wins(store: Engine) -> None:
    first = _claim(Ledger(store, lease_s=600), _request())
    _succeed(store, first.call_id)
    with store.begin() as conn:
        record = mark_succeeded(conn, _answer(first.call_id, response="late"))
    assert record.response == "[]"
