"""The generate step end to end: real Postgres, the LLM emulator over real HTTP."""

from __future__ import annotations

from collections import Counter

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dynosaur.errors import LLMAuthError, LLMQuotaError, ServiceUnavailable, UsageError
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
    # A malformed answer is a 200 (paid, in the ledger) that is not served: the prompt's next
    # request is another one (an attempt number in its hash, a repair note in its messages).
    assert summary.figures["answers_unusable"] == faults["malformed"]
    unusable = scalar_of(
        store, "SELECT count(*) FROM llm_call WHERE 'llm_unusable_answer' = ANY(notes)"
    )
    assert unusable == faults["malformed"]
    assert scalar_of(store, "SELECT count(*) FROM generation WHERE reason = 'no_tasks'") == 0
    assert summary.total == 40
    assert summary.figures["calls_sent"] == 40 + faults["malformed"]
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


def test_calls_failing_transiently_stay_retryable_until_the_cap(
    store: Engine, settings: Settings, emulator
) -> None:
    ids = insert_configs(store, 3)
    llm = emulator(rate_5xx=1.0)
    tuned = fast_settings(
        settings, llm.base_url, llm_max_retries=1, llm_max_deferrals=2, llm_defer_s=60
    )
    with pytest.raises(ServiceUnavailable) as raised:
        generate(tuned, store, ids, run_key="r")
    assert raised.value.service == "llm" and raised.value.deferred == 3
    configs = rows_of(store, "SELECT status, reason FROM dataset_config")
    assert {(c.status, c.reason) for c in configs} == {("deferred", "llm_server_error")}
    gens = rows_of(store, "SELECT attempts, next_attempt_at > now() AS later FROM generation")
    assert {(g.attempts, g.later) for g in gens} == {(1, True)}
    calls = rows_of(store, "SELECT status, reason, attempts FROM llm_call")
    assert {(c.status, c.reason, c.attempts) for c in calls} == {("failed", "llm_server_error", 2)}
    assert len(llm.request_log) == 6
    # Not due yet for another run; due at once for the run that deferred them.
    assert generate_queue(settings, store) == []
    assert generate_queue(settings, store, run_key="r") == sorted(ids)
    # The second run that fails them reaches the cap: they fail with their reason.
    summary = generate(tuned, store, generate_queue(tuned, store, run_key="r"), run_key="r")
    assert summary.counts == Counter({("failed", Reason.LLM_SERVER_ERROR.value): 3})
    gens = rows_of(store, "SELECT status, attempts, message FROM generation")
    assert all(g.status == "failed" and g.attempts == 2 and "gave up" in g.message for g in gens)
    assert generate_queue(settings, store, run_key="r") == []


def test_an_outage_defers_the_work_and_a_rerun_after_recovery_completes_it(
    store: Engine, settings: Settings, emulator
) -> None:
    ids = insert_configs(store, 10)
    down = fast_settings(settings, "http://127.0.0.1:9/v1", llm_max_retries=1, llm_concurrency=2)
    with pytest.raises(ServiceUnavailable, match="could not answer"):
        generate(down, store, ids, run_key="day")
    configs = rows_of(store, "SELECT status, reason FROM dataset_config")
    assert {(c.status, c.reason) for c in configs} == {("deferred", "llm_connection_error")}
    # The run stopped sending once calls kept failing: not every config was tried.
    tried = scalar_of(store, "SELECT count(*) FROM generation WHERE attempts > 0")
    assert 3 <= tried < 10
    # Due at once (DYNOSAUR_LLM_DEFER_S is 0 by default): any later run adopts them too.
    assert generate_queue(settings, store) == sorted(ids)
    llm = emulator()
    summary = generate(
        fast_settings(settings, llm.base_url),
        store,
        generate_queue(settings, store, run_key="day"),
        run_key="day",
    )
    assert summary.counts == Counter({("generated", None): 10})
    assert len(llm.request_log) == 10


def test_unusable_answers_are_not_reused_and_fail_at_the_cap(
    store: Engine, settings: Settings, scripted
) -> None:
    ids = insert_configs(store, 1)
    prose = completion("Sorry, I cannot do that.")
    server = scripted([(200, prose, {})])
    tuned = fast_settings(settings, server.base_url, llm_max_unusable=3)
    summary = generate(tuned, store, ids, run_key="r")
    assert summary.counts == Counter({("failed", Reason.LLM_UNUSABLE_ANSWER.value): 1})
    assert summary.figures["answers_unusable"] == 3 and len(server.requests) == 3
    # Three distinct requests: the second and third carry a repair note and their number.
    sent = [r["body"]["messages"] for r in server.requests]
    assert len(sent[1]) == len(sent[0]) + 1 and "Attempt 2" in sent[1][-1]["content"]
    assert "Attempt 3" in sent[2][-1]["content"]
    calls = rows_of(store, "SELECT status, notes, request_hash FROM llm_call ORDER BY id")
    assert len({c.request_hash for c in calls}) == 3
    assert all(c.status == "succeeded" and "llm_unusable_answer" in c.notes for c in calls)
    assert scalar_of(store, "SELECT count(*) FROM task") == 0
    # A later run serves none of them as a success and sends nothing more.
    again = generate(tuned, store, ids, run_key="r2")
    assert again.figures["calls_sent"] == 0 and len(server.requests) == 3


def test_a_usable_answer_after_an_unusable_one_is_served(
    store: Engine, settings: Settings, scripted
) -> None:
    ids = insert_configs(store, 1)
    good = '[{"instruction": "Answer the question.", "input_fields": ["question"], ' + (
        '"output_field": "answer"}]'
    )
    server = scripted(
        [
            (200, completion('[{"instruction": "Ans', finish_reason="length"), {}),
            (200, completion(good), {}),
        ]
    )
    summary = generate(fast_settings(settings, server.base_url), store, ids, run_key="r")
    assert summary.counts == Counter({("generated", None): 1})
    assert summary.figures["answers_unusable"] == 1 and summary.figures["tasks_proposed"] == 1
    gen = rows_of(store, "SELECT unusable_answers, llm_call_id FROM generation")
    served = rows_of(store, "SELECT id, response FROM llm_call WHERE notes = '{}'")
    assert gen[0].unusable_answers == 1 and [gen[0].llm_call_id] == [c.id for c in served]


def test_answers_cut_every_time_keep_the_last_ones_complete_tasks_or_fail(
    store: Engine, settings: Settings, emulator
) -> None:
    ids = insert_configs(store, 6)
    llm = emulator(rate_truncated=1.0)
    summary = generate(fast_settings(settings, llm.base_url), store, ids, run_key="r")
    assert summary.figures["answers_unusable"] == 6 * 3 == len(llm.request_log)
    gens = rows_of(store, "SELECT status, reason FROM generation")
    assert {(g.status, g.reason) for g in gens} <= {
        ("succeeded", "response_truncated"),
        ("failed", "llm_unusable_answer"),
    }
    assert summary.figures["responses_truncated"] == sum(g.status == "succeeded" for g in gens)
    notes = rows_of(store, "SELECT status, notes FROM dataset_config")
    assert all("response_truncated" in n.notes for n in notes if n.status == "generated")


def test_a_fifth_of_answers_malformed_or_cut_every_config_ends_with_tasks_or_a_capped_failure(
    store: Engine, settings: Settings, emulator
) -> None:
    ids = insert_configs(store, 30)
    llm = emulator(rate_malformed=0.1, rate_truncated=0.1, seed=3)
    summary = generate(fast_settings(settings, llm.base_url), store, ids, run_key="r")
    states = rows_of(store, "SELECT id, status, reason FROM dataset_config")
    with_tasks = {r.config_id for r in rows_of(store, "SELECT DISTINCT config_id FROM task")}
    for state in states:
        assert (state.status == "generated" and state.id in with_tasks) or (
            state.status == "failed" and state.reason == "llm_unusable_answer"
        )
    faults = Counter(e["outcome"].get("fault") for e in llm.request_log)
    assert summary.figures["answers_unusable"] == faults["malformed"] + faults["truncated"] > 0


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


def test_an_empty_list_is_an_answer_and_gives_one_raw_task_row(
    store: Engine, settings: Settings, scripted
) -> None:
    ids = insert_configs(store, 1)
    server = scripted([(200, completion("[]"), {})])
    generate(fast_settings(settings, server.base_url), store, ids, run_key="r")
    tasks = rows_of(store, "SELECT raw, instruction, input_fields, output_field FROM task")
    assert [tuple(t) for t in tasks] == [("[]", None, None, None)]
    gen = rows_of(store, "SELECT status, reason FROM generation")
    assert [tuple(g) for g in gen] == [("succeeded", "no_tasks")] and len(server.requests) == 1


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


def test_a_reasoning_family_model_completes_against_the_strict_emulator(
    store: Engine, settings: Settings, emulator
) -> None:
    ids = insert_configs(store, 4)
    llm = emulator(strict=True)
    tuned = fast_settings(
        settings,
        llm.base_url,
        llm_model="gpt-5-mini",
        llm_prices={"gpt-5-mini": ModelPrice(input=0.25, output=2.0)},
    )
    summary = generate(tuned, store, ids, run_key="r")
    assert summary.counts == Counter({("generated", None): 4})
    assert llm.status_counts == {200: 4}
    params = rows_of(store, "SELECT parameters FROM llm_call")
    assert all(
        p.parameters == {"max_completion_tokens": tuned.llm_reasoning_max_tokens} for p in params
    )


def test_insufficient_quota_stops_the_run_after_one_round_of_in_flight_calls(
    store: Engine, settings: Settings, emulator
) -> None:
    ids = insert_configs(store, 40)
    llm = emulator(quota_requests=0, latency=0.05)
    tuned = fast_settings(settings, llm.base_url, llm_concurrency=4)
    with pytest.raises(LLMQuotaError, match="no quota left"):
        generate(tuned, store, ids, run_key="r")
    # The calls on the wire when the first refusal came back, and none after.
    assert 1 <= len(llm.request_log) <= 4
    configs = rows_of(store, "SELECT status, reason FROM dataset_config")
    assert {(c.status, c.reason) for c in configs} == {("deferred", "llm_quota_exhausted")}
    assert sorted(generate_queue(tuned, store)) == sorted(ids)


class _Counted:
    """A progress that keeps the total it was given and what was advanced."""

    def __init__(self) -> None:
        self.total: int | None = None
        self.advanced = 0

    def start(self, total: int | None, description: str) -> None:
        self.total = total

    def advance(self, n: int = 1, **figures: object) -> None:
        self.advanced += n

    def finish(self) -> None:
        pass


def test_a_request_planned_again_by_a_later_chunk_is_sent_once(
    store: Engine, settings: Settings, emulator
) -> None:
    # Planned in chunks of 1, 2, 4... configs (concurrency 1): the first config's copy (another
    # revision of the same dataset: the very same prompt) is planned by the third chunk.
    ids = insert_configs(store, 5)
    with store.begin() as conn:
        copy = conn.execute(
            sa.text(
                "WITH d AS (INSERT INTO hub_dataset (dataset_id, sha, discovered_via, hub_url, "
                "pretty_name, summary, licenses, languages, status) SELECT dataset_id, 'sha-new', "
                "discovered_via, hub_url, pretty_name, summary, licenses, languages, status "
                "FROM hub_dataset WHERE id = (SELECT hub_dataset_id FROM dataset_config "
                "WHERE id = :c) RETURNING id) "
                "INSERT INTO dataset_config (hub_dataset_id, config_name, fields, sample_split, "
                "sample_rows, status) SELECT d.id, config_name, fields, sample_split, sample_rows, "
                "status FROM dataset_config, d WHERE dataset_config.id = :c RETURNING id"
            ),
            {"c": ids[0]},
        ).scalar_one()
    llm = emulator(latency=0.05)
    progress = _Counted()
    tuned = fast_settings(settings, llm.base_url, llm_concurrency=1)
    summary = generate(tuned, store, [*ids, copy], run_key="r", progress=progress)
    assert summary.counts == Counter({("generated", None): 6})
    assert summary.figures["calls_sent"] == llm.status_counts[200] == 5
    assert summary.figures["calls_reused"] == 1
    assert progress.total == progress.advanced == 6


def test_a_chunk_that_cannot_be_planned_lets_the_calls_already_started_finish(
    store: Engine, settings: Settings, emulator
) -> None:
    # Concurrency 2: chunks of 2, 4... configs; the fourth config's fields cannot be read, so the
    # second chunk fails to plan while the first chunk's calls are on the wire.
    ids = insert_configs(store, 6)
    with store.begin() as conn:
        conn.execute(
            sa.text("UPDATE dataset_config SET fields = '[{\"bogus\": 1}]' WHERE id = :c"),
            {"c": ids[3]},
        )
    llm = emulator(latency=0.2)
    tuned = fast_settings(settings, llm.base_url, llm_concurrency=2)
    with pytest.raises(KeyError):
        generate(tuned, store, ids, run_key="r")
    done = rows_of(store, "SELECT id FROM dataset_config WHERE status = 'generated' ORDER BY id")
    assert [r.id for r in done] == ids[:2]
    assert scalar_of(store, "SELECT count(*) FROM llm_call WHERE status <> 'succeeded'") == 0
