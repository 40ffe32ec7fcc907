"""The generate step end to end: real Postgres, the LLM emulator over real HTTP."""

from __future__ import annotations

from collections import Counter

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dynosaur.errors import LLMAuthError, UsageError
from dynosaur.generate import generate, generate_queue
from dynosaur.generate.cost import prompt_tokens_bound, reservation
from dynosaur.generate.prompts import PromptBook, PromptKind
from dynosaur.reasons import Reason
from dynosaur.settings import ModelPrice, Settings
from dynosaur.store.generations import load_metadata
from tests.generate.conftest import (
    completion,
    error,
    fast_settings,
    insert_configs,
    rows_of,
    scalar_of,
)

FAULTS = {"rate_429": 0.05, "rate_5xx": 0.05, "rate_hang": 0.05, "rate_malformed": 0.05}


def test_every_config_ends_terminal_and_nothing_is_paid_twice_under_20_percent_faults(
    store: Engine, settings: Settings, emulator
) -> None:
    ids = insert_configs(store, 40)
    llm = emulator(**FAULTS, retry_after=0.01, seed=8)  # draws follow the prompts' hashes
    tuned = fast_settings(settings, llm.base_url, llm_timeout_s=0.5)
    summary = generate(tuned, store, ids, run_key="run-1")

    states = rows_of(store, "SELECT status, reason FROM dataset_config")
    assert all(s.status == "generated" or (s.status == "failed" and s.reason) for s in states)
    log = llm.request_log
    faults = Counter(e["outcome"].get("fault") for e in log if "outcome" in e)
    assert faults["rate_limited"] and faults["server_error"] and faults["malformed"]
    # The ledger: one succeeded row per distinct request, and one HTTP 200 per succeeded row.
    succeeded = scalar_of(store, "SELECT count(*) FROM llm_call WHERE status = 'succeeded'")
    distinct = scalar_of(store, "SELECT count(DISTINCT request_hash) FROM llm_call")
    ok = Counter(e["messages_sha256"] for e in log if e["status"] == 200)
    assert succeeded == distinct == len(ok) == summary.figures["calls_succeeded"]
    assert max(ok.values()) == 1
    # A malformed answer is a 200 (paid, never retried): stored, it leaves one task row with
    # the raw text and no parts, for curate to reject as unparseable.
    no_tasks = rows_of(store, "SELECT id FROM generation WHERE reason = 'no_tasks'")
    assert len(no_tasks) == faults["malformed"]
    assert summary.total == 40 and summary.figures["calls_sent"] == 40

    again = generate(tuned, store, ids, run_key="run-2")
    assert again.figures["calls_sent"] == 0 and len(llm.request_log) == len(log)
    assert again.counts == summary.counts


def test_requests_on_the_wire_reach_and_never_exceed_the_concurrency(
    store: Engine, settings: Settings, emulator
) -> None:
    ids = insert_configs(store, 12)
    # The emulator answers in groups of 4 (each request waits for the group to fill), so a
    # fan-out that keeps 4 requests in flight shows a peak of exactly 4 at the server, however
    # slow the machine (it cannot send a fifth before an answer); one that sent fewer would never
    # fill a group and time out. The latency keeps each released group in progress a while, so
    # a fan-out that sent a fifth request at once would be seen doing it.
    llm = emulator(hold=4, latency=0.05)
    tuned = fast_settings(settings, llm.base_url, llm_concurrency=4, llm_timeout_s=120)
    summary = generate(tuned, store, ids, run_key="r")
    assert summary.figures["calls_succeeded"] == summary.figures["calls_sent"] == 12
    assert llm.peak_in_progress == 4
    assert llm.status_counts == {200: 12}


def test_tasks_are_stored_for_curate_with_raw_text_and_parts(
    store: Engine, settings: Settings, emulator
) -> None:
    ids = insert_configs(store, 4)
    llm = emulator()
    summary = generate(fast_settings(settings, llm.base_url), store, ids, run_key="r")
    tasks = rows_of(
        store,
        "SELECT t.config_id, t.position, t.raw, t.instruction, t.input_fields, t.output_field, "
        "t.status FROM task t ORDER BY t.config_id, t.position",
    )
    assert tasks and summary.figures["tasks_proposed"] == len(tasks)
    assert all(t.status == "proposed" and t.raw and t.instruction for t in tasks)
    assert all(t.output_field in {"question", "passage", "answer", "label"} for t in tasks)
    assert {t.config_id for t in tasks} == set(ids)
    configs = rows_of(store, "SELECT status, reason FROM dataset_config")
    assert {(c.status, c.reason) for c in configs} == {("generated", None)}


def test_prompt_kind_follows_the_card_summary_and_both_adds_the_unaware_one(
    store: Engine, settings: Settings, emulator
) -> None:
    ids = insert_configs(store, 4, summary_every=2)  # configs 0 and 2 have a summary
    llm = emulator()
    generate(fast_settings(settings, llm.base_url), store, ids[:2], run_key="a")
    kinds = rows_of(store, "SELECT config_id, prompt_kind FROM generation ORDER BY config_id")
    assert [(k.config_id, k.prompt_kind) for k in kinds] == [
        (ids[0], "description_aware"),
        (ids[1], "description_unaware"),
    ]
    generate(
        fast_settings(settings, llm.base_url, prompt_kinds="both"), store, ids[2:], run_key="b"
    )
    kinds = rows_of(
        store, "SELECT prompt_kind FROM generation WHERE config_id = :c ORDER BY id", c=ids[2]
    )
    assert [k.prompt_kind for k in kinds] == ["description_aware", "description_unaware"]


def test_ledger_rows_carry_hash_version_tokens_cost_and_attempts(
    store: Engine, settings: Settings, emulator
) -> None:
    ids = insert_configs(store, 2)
    llm = emulator()
    tuned = fast_settings(settings, llm.base_url)
    summary = generate(tuned, store, ids, run_key="r")
    calls = rows_of(store, "SELECT * FROM llm_call ORDER BY id")
    versions = set(PromptBook.load().versions.values())
    price = tuned.llm_prices["gpt-4o-mini"]
    for call in calls:
        assert call.status == "succeeded" and call.attempts == 1 and call.run_key == "r"
        assert call.prompt_version in versions and len(call.request_hash) == 64
        expected = (call.prompt_tokens * price.input + call.completion_tokens * price.output) / 1e6
        assert float(call.cost_usd) == pytest.approx(expected, rel=1e-6)
    spent = sum(float(c.cost_usd) for c in calls)
    assert summary.figures["cost_usd"] == pytest.approx(spent)
    assert summary.figures["tokens_in"] == sum(c.prompt_tokens for c in calls)
    per_config = scalar_of(store, "SELECT sum(cost_usd) FROM generation")
    assert float(per_config) == pytest.approx(spent)


def test_all_calls_failing_fails_each_config_with_the_llm_reason(
    store: Engine, settings: Settings, emulator
) -> None:
    ids = insert_configs(store, 3)
    llm = emulator(rate_5xx=1.0)
    summary = generate(
        fast_settings(settings, llm.base_url, llm_max_retries=1), store, ids, run_key="r"
    )
    assert summary.counts == Counter({("failed", Reason.LLM_SERVER_ERROR.value): 3})
    calls = rows_of(store, "SELECT status, reason, attempts FROM llm_call")
    assert {(c.status, c.reason, c.attempts) for c in calls} == {("failed", "llm_server_error", 2)}
    assert len(llm.request_log) == 6
    assert generate_queue(settings, store) == []


def test_truncated_answers_keep_complete_tasks_and_note_it(
    store: Engine, settings: Settings, emulator
) -> None:
    ids = insert_configs(store, 6)
    llm = emulator(rate_truncated=1.0)
    summary = generate(fast_settings(settings, llm.base_url), store, ids, run_key="r")
    assert summary.figures["responses_truncated"] == 6
    gens = rows_of(store, "SELECT status, reason FROM generation")
    assert {(g.status, g.reason) for g in gens} == {("succeeded", "response_truncated")}
    notes = rows_of(store, "SELECT notes FROM dataset_config")
    assert all("response_truncated" in n.notes for n in notes)


def test_budget_stops_new_calls_and_defers_the_rest_to_a_later_run(
    store: Engine, settings: Settings, emulator
) -> None:
    ids = insert_configs(store, 10, summary_every=1)
    llm = emulator()
    tuned = fast_settings(
        settings,
        llm.base_url,
        llm_concurrency=1,
        llm_prices={"gpt-4o-mini": ModelPrice(input=1000.0, output=1000.0)},
    )
    book = PromptBook.load()
    first = book.prompt(load_metadata(store, ids[:1])[ids[0]], PromptKind.DESCRIPTION_AWARE)
    one_call = reservation(
        tuned.llm_prices["gpt-4o-mini"], prompt_tokens_bound(first.messages), tuned.llm_max_tokens
    )
    budget = 3 * one_call
    summary = generate(tuned, store, ids, run_key="tight", budget_usd=budget)

    sent = summary.figures["calls_sent"]
    assert 1 <= sent < 10 and len(llm.request_log) == sent
    spent = float(scalar_of(store, "SELECT sum(cost_usd) FROM llm_call WHERE run_key = 'tight'"))
    assert spent <= budget
    waiting = rows_of(
        store, "SELECT id, status, reason FROM dataset_config WHERE status <> 'generated'"
    )
    assert len(waiting) == 10 - sent
    assert {(w.status, w.reason) for w in waiting} == {("deferred", "budget_exhausted")}
    deferred = rows_of(store, "SELECT reason FROM generation WHERE status <> 'succeeded'")
    assert {d.reason for d in deferred} == {"budget_exhausted"} and len(deferred) == 10 - sent
    assert scalar_of(store, "SELECT count(*) FROM generation WHERE status = 'deferred'") == len(
        deferred
    )
    assert summary.counts[("deferred", "budget_exhausted")] == 10 - sent
    assert generate_queue(tuned, store) == sorted(w.id for w in waiting)

    # The same run key (another chunk, a retry) shares the budget: what is left of it (the
    # reservations of calls that were in flight at the stop) buys at most a call or two.
    same_run = generate(
        tuned, store, generate_queue(tuned, store), run_key="tight", budget_usd=budget
    )
    more = same_run.figures["calls_sent"]
    assert more <= 2 and same_run.counts[("deferred", "budget_exhausted")] == 10 - sent - more
    spent = float(scalar_of(store, "SELECT sum(cost_usd) FROM llm_call WHERE run_key = 'tight'"))
    assert spent <= budget
    later = generate(tuned, store, generate_queue(tuned, store), run_key="later", budget_usd=-1)
    assert later.figures["calls_sent"] == 10 - sent - more
    assert generate_queue(tuned, store) == []
    assert len({e["messages_sha256"] for e in llm.request_log}) == len(llm.request_log) == 10


def test_a_model_without_a_price_runs_only_without_a_budget(
    store: Engine, settings: Settings, emulator
) -> None:
    ids = insert_configs(store, 1)
    llm = emulator()
    tuned = fast_settings(settings, llm.base_url, llm_model="mystery-model")
    with pytest.raises(UsageError, match="no price is known for model 'mystery-model'"):
        generate(tuned, store, ids, run_key="r", budget_usd=1.0)
    assert scalar_of(store, "SELECT count(*) FROM generation") == 0
    summary = generate(tuned, store, ids, run_key="r", budget_usd=-1)
    assert summary.figures["calls_succeeded"] == 1 and summary.figures["cost_usd"] == 0


def test_dry_run_estimates_without_sending_or_writing(
    store: Engine, settings: Settings, emulator
) -> None:
    ids = insert_configs(store, 6)
    llm = emulator()
    tuned = fast_settings(settings, llm.base_url)
    estimate = generate(tuned, store, ids, run_key="dry", dry_run=True)
    assert llm.request_log == [] and scalar_of(store, "SELECT count(*) FROM generation") == 0
    assert estimate.figures["calls_to_send"] == 6 and estimate.figures["calls_reused"] == 0
    assert estimate.figures["cost_usd_estimate"] > 0
    assert estimate.figures["cost_usd_max"] >= estimate.figures["cost_usd_estimate"]
    real = generate(tuned, store, ids[:3], run_key="wet")
    # Local counts (another tokenizer than the emulator's) are within a factor of two.
    ratio = estimate.figures["tokens_in_estimate"] / 2 / real.figures["tokens_in"]
    assert 0.5 < ratio < 2
    after = generate(tuned, store, ids, run_key="dry", dry_run=True)
    assert after.figures["calls_to_send"] == 3


def test_an_auth_error_stops_the_run_and_defers_the_configs(
    store: Engine, settings: Settings, scripted
) -> None:
    ids = insert_configs(store, 5)
    server = scripted([(401, error(401, "Incorrect API key provided"), {})])
    tuned = fast_settings(settings, server.base_url, llm_concurrency=1)
    with pytest.raises(LLMAuthError, match="rejected the API key"):
        generate(tuned, store, ids, run_key="r")
    assert len(server.requests) == 1
    configs = rows_of(store, "SELECT status, reason FROM dataset_config")
    assert {(c.status, c.reason) for c in configs} == {("deferred", "llm_auth_error")}
    generations = rows_of(store, "SELECT status, reason FROM generation")
    assert {(g.status, g.reason) for g in generations} == {("deferred", "llm_auth_error")}
    assert sorted(generate_queue(tuned, store)) == sorted(ids)


def test_an_answer_without_tasks_gives_one_raw_task_row(
    store: Engine, settings: Settings, scripted
) -> None:
    ids = insert_configs(store, 1)
    server = scripted([(200, completion("Sorry, I cannot do that."), {})])
    generate(fast_settings(settings, server.base_url), store, ids, run_key="r")
    tasks = rows_of(store, "SELECT raw, instruction, input_fields, output_field FROM task")
    assert [tuple(t) for t in tasks] == [("Sorry, I cannot do that.", None, None, None)]
    gen = rows_of(store, "SELECT status, reason FROM generation")
    assert [tuple(g) for g in gen] == [("succeeded", "no_tasks")]


def test_structured_output_sends_a_json_schema_and_reads_the_wrapper(
    store: Engine, settings: Settings, emulator
) -> None:
    ids = insert_configs(store, 2)
    llm = emulator()
    tuned = fast_settings(settings, llm.base_url, llm_structured_output=True)
    summary = generate(tuned, store, ids, run_key="r")
    assert summary.figures["tasks_proposed"] > 0
    params = rows_of(store, "SELECT parameters FROM llm_call")
    assert all(p.parameters["response_format"]["type"] == "json_schema" for p in params)


def test_queue_lists_collected_configs_oldest_first_with_a_limit(
    store: Engine, settings: Settings
) -> None:
    ids = insert_configs(store, 5)
    with store.begin() as conn:
        conn.execute(
            sa.text("UPDATE dataset_config SET status = 'generated' WHERE id = :i"), {"i": ids[1]}
        )
    assert generate_queue(settings, store) == [ids[0], *ids[2:]]
    assert generate_queue(settings, store, limit=2) == [ids[0], ids[2]]
