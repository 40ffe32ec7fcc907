"""The LLM emulator, driven only through the official openai SDK (sync and async) and, for bad
requests the SDK would refuse to send, raw httpx."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path

import httpx
import openai
import pytest

from dynosaur.emulators.llm import LLMEmulator, count_tokens
from dynosaur.emulators.tasks import INVALID_KINDS
from dynosaur.generate.blocks import DatasetBlock, render_block

REVIEWS = DatasetBlock(
    name="acme/kettle-reviews",
    config=None,
    fields=["review_id", "review", "stars", "title"],
    examples=[
        {
            "review_id": "r1",
            "review": "The kettle boiled quickly but the lid cracked after two weeks of daily use.",
            "stars": 2,
            "title": "Lid cracked",
        },
        {
            "review_id": "r2",
            "review": "Quiet, fast and pretty; we have used it every morning for a year now.",
            "stars": 5,
            "title": "Lovely kettle",
        },
    ],
)
DEMO = DatasetBlock("demo/qa", "plain", ["question", "answer"], [{"question": "q", "answer": "a"}])


def reviews(name: str) -> DatasetBlock:
    """The reviews block under another dataset name (another request, the same shape)."""
    return dataclasses.replace(REVIEWS, name=name)


def messages(block: DatasetBlock = REVIEWS, system: str = "Propose up to three tasks.") -> list:
    demo = render_block(DEMO, tasks=[{"instruction": "x", "input_fields": ["question"]}])
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": demo + "\n\n" + render_block(block)},
    ]


def client(llm: LLMEmulator, **options: object) -> openai.OpenAI:
    return openai.OpenAI(base_url=llm.base_url, api_key="test-key", **options)


def tasks_of(completion: object) -> list:
    return json.loads(completion.choices[0].message.content)


@pytest.fixture
def reference(tmp_path: Path) -> Path:
    path = tmp_path / "tasks.jsonl"
    rows = [
        {
            "dataset": "glue",
            "config": "mrpc",
            "task_name": "glue-mrpc",
            "instruction": "Decide whether the sentences match. Answers must be one of a, b.",
            "input_fields": ["sentence1", "sentence2"],
            "output_field": ["label"],
        },
        {
            "dataset": "glue",
            "config": "mrpc",
            "task_name": "glue-mrpc",
            "instruction": "Rewrite the second sentence.",
            "input_fields": ["sentence1"],
            "output_field": ["sentence2"],
        },
        {
            "dataset": "ag_news",
            "config": None,
            "task_name": "ag_news",
            "instruction": "Give the topic of the article.",
            "input_fields": ["text"],
            "output_field": ["label"],
        },
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_derived_tasks_use_only_fields_of_the_prompted_dataset(llm_emulator: LLMEmulator) -> None:
    completion = client(llm_emulator).chat.completions.create(
        model="gpt-4o-mini", messages=messages(), temperature=0
    )
    tasks = tasks_of(completion)
    assert 1 <= len(tasks) <= 3
    for task in tasks:
        assert set(task) == {"instruction", "input_fields", "output_field"}
        assert set(task["input_fields"]) | {task["output_field"]} <= set(REVIEWS.fields)
        assert task["output_field"] not in task["input_fields"]
    entry = llm_emulator.request_log[-1]
    assert (entry["dataset"], entry["config"], entry["status"]) == (
        "acme/kettle-reviews",
        None,
        200,
    )
    assert entry["outcome"] == {
        "policy": "derive",
        "tasks": len(tasks),
        "invalid": [],
        "suspicious": [],
    }


def test_usage_counts_word_and_punctuation_tokens(llm_emulator: LLMEmulator) -> None:
    sent = messages()
    completion = client(llm_emulator).chat.completions.create(model="gpt-4o", messages=sent)
    usage = completion.usage
    assert usage.prompt_tokens == sum(count_tokens(m["content"]) for m in sent)
    assert usage.completion_tokens == count_tokens(completion.choices[0].message.content)
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert completion.model == "gpt-4o"


def test_same_prompt_gives_the_same_tasks_in_another_emulator(llm_emulator: LLMEmulator) -> None:
    first = client(llm_emulator).chat.completions.create(model="m", messages=messages())
    with LLMEmulator() as other:
        second = client(other).chat.completions.create(model="m", messages=messages())
    assert tasks_of(first) == tasks_of(second)


def test_up_to_n_tasks_in_the_prompt_bounds_the_answer(llm_emulator: LLMEmulator) -> None:
    sent = messages(system="Propose up to 1 task for the last dataset.")
    completion = client(llm_emulator).chat.completions.create(model="m", messages=sent)
    assert len(tasks_of(completion)) == 1


def test_replay_returns_recorded_tasks_without_the_label_suffix(reference: Path) -> None:
    block = DatasetBlock("glue", "mrpc", ["sentence1", "sentence2", "label", "idx"], [])
    with LLMEmulator(reference=reference) as llm:
        completion = client(llm).chat.completions.create(model="m", messages=messages(block))
        outcome = llm.request_log[-1]["outcome"]
    assert tasks_of(completion) == [
        {
            "instruction": "Decide whether the sentences match.",
            "input_fields": ["sentence1", "sentence2"],
            "output_field": ["label"],
        },
        {
            "instruction": "Rewrite the second sentence.",
            "input_fields": ["sentence1"],
            "output_field": ["sentence2"],
        },
    ]
    assert outcome["policy"] == "replay"


def test_replay_of_a_single_config_dataset_matches_any_config_name(reference: Path) -> None:
    block = DatasetBlock("ag_news", "default", ["text", "label"], [])
    with LLMEmulator(reference=reference) as llm:
        completion = client(llm).chat.completions.create(model="m", messages=messages(block))
    assert tasks_of(completion)[0]["instruction"] == "Give the topic of the article."


def test_json_response_format_wraps_the_tasks_in_an_object(llm_emulator: LLMEmulator) -> None:
    schema = {"name": "tasks", "schema": {"type": "object"}}
    completion = client(llm_emulator).chat.completions.create(
        model="m",
        messages=messages(),
        response_format={"type": "json_schema", "json_schema": schema},
    )
    answer = json.loads(completion.choices[0].message.content)
    assert set(answer) == {"tasks"} and answer["tasks"]


def test_invalid_share_injects_the_invalid_kinds_it_reports() -> None:
    with LLMEmulator(invalid_share=1.0) as llm:
        sdk = client(llm)
        kinds: list[str] = []
        for i in range(12):
            block = reviews(f"acme/reviews-{i}")
            tasks = tasks_of(sdk.chat.completions.create(model="m", messages=messages(block)))
            reported = llm.request_log[-1]["outcome"]["invalid"]
            assert len(reported) == len(tasks)
            for task, kind in zip(tasks, reported, strict=True):
                kinds.append(kind)
                if kind == "unparseable":
                    assert isinstance(task, str)
                elif kind == "unknown_field":
                    named = {*task["input_fields"], task["output_field"]}
                    assert named - set(REVIEWS.fields)
                elif kind == "output_in_inputs":
                    assert task["output_field"] in task["input_fields"]
                elif kind == "multiple_outputs":
                    assert isinstance(task["output_field"], list) and len(task["output_field"]) == 2
                elif kind == "malformed_fields":
                    assert any(not isinstance(f, str) for f in task["input_fields"])
                else:
                    assert kind == "empty_output" and task["output_field"] == ""
    assert set(kinds) == set(INVALID_KINDS)


def test_prompt_without_a_dataset_block_gets_an_empty_list(llm_emulator: LLMEmulator) -> None:
    completion = client(llm_emulator).chat.completions.create(
        model="m", messages=[{"role": "user", "content": "Hello there"}]
    )
    assert tasks_of(completion) == []
    assert llm_emulator.request_log[-1]["dataset"] is None


def test_models_endpoint_lists_models(llm_emulator: LLMEmulator) -> None:
    assert "gpt-4o-mini" in [m.id for m in client(llm_emulator).models.list().data]


# --- faults ---------------------------------------------------------------------------------


def test_sdk_retries_429_until_the_request_succeeds() -> None:
    with LLMEmulator(rate_429=0.6, retry_after=0.01, seed=1) as llm:
        completion = client(llm, max_retries=20).chat.completions.create(
            model="m", messages=messages()
        )
        log = llm.request_log
    assert tasks_of(completion)
    assert [e["status"] for e in log][-1] == 200
    assert 429 in [e["status"] for e in log]
    assert len({e["messages_sha256"] for e in log}) == 1
    assert [e["attempt"] for e in log] == list(range(1, len(log) + 1))


def test_async_client_completes_concurrent_requests_through_429_and_5xx() -> None:
    async def run(base_url: str) -> list[int]:
        sdk = openai.AsyncOpenAI(base_url=base_url, api_key="k", max_retries=30)
        blocks = [reviews(f"acme/r{i}") for i in range(16)]
        answers = await asyncio.gather(
            *(sdk.chat.completions.create(model="m", messages=messages(b)) for b in blocks)
        )
        await sdk.close()
        return [len(tasks_of(a)) for a in answers]

    with LLMEmulator(rate_429=0.3, rate_5xx=0.2, retry_after=0.01, seed=5) as llm:
        counts = asyncio.run(run(llm.base_url))
        statuses = [e["status"] for e in llm.request_log]
    assert all(counts)
    assert statuses.count(200) == 16
    assert 429 in statuses and any(s >= 500 for s in statuses)


def test_faults_are_reproducible_for_a_seed() -> None:
    def statuses(seed: int) -> list[int]:
        with LLMEmulator(rate_429=0.5, retry_after=0.01, seed=seed) as llm:
            sdk = client(llm, max_retries=0)
            out = []
            for i in range(12):
                block = reviews(f"acme/s{i}")
                try:
                    sdk.chat.completions.create(model="m", messages=messages(block))
                    out.append(200)
                except openai.RateLimitError:
                    out.append(429)
            return out

    assert statuses(8) == statuses(8)
    assert statuses(8) != statuses(9)


def test_hanging_request_times_out_the_client() -> None:
    with (
        LLMEmulator(rate_hang=1.0, hang_seconds=600) as llm,
        pytest.raises(openai.APITimeoutError),
    ):
        client(llm, timeout=0.3, max_retries=1).chat.completions.create(
            model="m", messages=messages()
        )
    # entries are written when the hang ends, here when the emulator stops
    assert [e["outcome"] for e in llm.request_log] == [{"fault": "hang"}] * 2


def test_malformed_output_is_prose_not_json() -> None:
    with LLMEmulator(rate_malformed=1.0) as llm:
        completion = client(llm).chat.completions.create(model="m", messages=messages())
        outcome = llm.request_log[-1]["outcome"]
    content = completion.choices[0].message.content
    with pytest.raises(json.JSONDecodeError):
        json.loads(content)
    assert "[" not in content and "{" not in content
    assert outcome["fault"] == "malformed"


def test_truncated_output_is_cut_json_with_finish_reason_length() -> None:
    with LLMEmulator(rate_truncated=1.0) as llm:
        completion = client(llm).chat.completions.create(model="m", messages=messages())
    choice = completion.choices[0]
    assert choice.finish_reason == "length"
    assert choice.message.content.startswith("[{")
    with pytest.raises(json.JSONDecodeError):
        json.loads(choice.message.content)


def test_max_tokens_cuts_the_answer(llm_emulator: LLMEmulator) -> None:
    completion = client(llm_emulator).chat.completions.create(
        model="m", messages=messages(), max_tokens=10
    )
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage.completion_tokens == 10


def test_request_log_file_gets_one_json_line_per_request(tmp_path: Path) -> None:
    path = tmp_path / "requests.jsonl"
    with LLMEmulator(request_log_path=path, rate_429=0.5, retry_after=0.01, seed=2) as llm:
        sdk = client(llm, max_retries=10)
        for i in range(3):
            block = reviews(f"acme/f{i}")
            sdk.chat.completions.create(model="m", messages=messages(block))
            # The entry is logged before the answer is sent: it is there once the answer is.
            assert llm.request_log[-1]["dataset"] == block.name
            assert llm.request_log[-1]["status"] == 200
        in_memory = llm.request_log
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines == in_memory
    assert sum(1 for e in lines if e["status"] == 200) == 3


# --- concurrency, measured at the server ------------------------------------------------------


async def _send_all(base_url: str, n: int, at_once: int) -> None:
    """``n`` different requests through the async SDK, at most ``at_once`` in flight."""
    slots = asyncio.Semaphore(at_once)
    async with openai.AsyncOpenAI(base_url=base_url, api_key="k", timeout=120) as sdk:

        async def one(i: int) -> None:
            async with slots:
                await sdk.chat.completions.create(model="m", messages=messages(reviews(f"c/{i}")))

        await asyncio.gather(*(one(i) for i in range(n)))


def test_hold_answers_in_groups_so_the_peak_is_the_clients_concurrency() -> None:
    with LLMEmulator(hold=4, latency=0.05) as llm:
        asyncio.run(_send_all(llm.base_url, 12, at_once=4))
        assert llm.peak_in_progress == 4
        assert llm.status_counts == {200: 12}


def test_peak_in_progress_sees_a_client_that_sends_more_than_the_hold() -> None:
    with LLMEmulator(hold=8) as llm:
        asyncio.run(_send_all(llm.base_url, 8, at_once=8))
        assert llm.peak_in_progress == 8
    with LLMEmulator() as llm:
        asyncio.run(_send_all(llm.base_url, 3, at_once=1))
        assert llm.peak_in_progress == 1


def test_held_requests_are_released_when_the_emulator_stops() -> None:
    with LLMEmulator(hold=5) as llm, pytest.raises(openai.APITimeoutError):
        client(llm, timeout=0.3, max_retries=0).chat.completions.create(
            model="m", messages=messages()
        )
    # stop() released the lone held request: it was answered (to nobody) and logged
    assert [e["status"] for e in llm.request_log] == [200]


# --- bad requests ---------------------------------------------------------------------------


def test_bad_requests_get_openai_style_errors(llm_emulator: LLMEmulator) -> None:
    sdk = client(llm_emulator, max_retries=0)
    with pytest.raises(openai.BadRequestError) as empty:
        sdk.chat.completions.create(model="m", messages=[])
    assert empty.value.body["param"] == "messages"
    with pytest.raises(openai.BadRequestError):
        sdk.chat.completions.create(model="m", messages=messages(), temperature=5)
    with pytest.raises(openai.BadRequestError):
        sdk.chat.completions.create(model="m", messages=messages(), stream=True)
    url = llm_emulator.base_url
    not_json = httpx.post(f"{url}/chat/completions", content=b"{nope", timeout=10)
    assert not_json.status_code == 400
    assert not_json.json()["error"]["type"] == "invalid_request_error"
    assert httpx.get(f"{url}/nothing/here", timeout=10).status_code == 404
    assert httpx.get(f"{url}/chat/completions", timeout=10).status_code == 405
    # and the server still answers
    assert sdk.chat.completions.create(model="m", messages=messages()).choices


# --- the real API's contract ------------------------------------------------------------------


def _post(llm: LLMEmulator, **body: object) -> httpx.Response:
    payload = {"model": "gpt-4o-mini", "messages": messages(), **body}
    return httpx.post(llm.base_url + "/chat/completions", json=payload, timeout=10)


def _error(response: httpx.Response) -> dict:
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


def test_strict_mode_rejects_unknown_models_and_accepts_dated_variants() -> None:
    with LLMEmulator(strict=True) as strict, LLMEmulator() as lenient:
        refused = _post(strict, model="gpt-9-ultra")
        assert refused.status_code == 404 and _error(refused)["code"] == "model_not_found"
        assert "`gpt-9-ultra` does not exist" in _error(refused)["message"]
        assert _post(strict, model="gpt-4o-mini-2024-07-18").status_code == 200
        assert _post(lenient, model="gpt-9-ultra").status_code == 200


def test_strict_reasoning_models_reject_max_tokens_and_temperature_as_the_real_api() -> None:
    with LLMEmulator(strict=True) as llm:
        tokens = _post(llm, model="o3-mini", max_tokens=100)
        assert tokens.status_code == 400
        assert _error(tokens) == {
            "message": "Unsupported parameter: 'max_tokens' is not supported with this model. "
            "Use 'max_completion_tokens' instead.",
            "type": "invalid_request_error",
            "param": "max_tokens",
            "code": "unsupported_parameter",
        }
        cold = _post(llm, model="gpt-5-mini", max_completion_tokens=500, temperature=0)
        assert cold.status_code == 400 and _error(cold)["param"] == "temperature"
        assert _error(cold)["code"] == "unsupported_value"
        ok = _post(llm, model="gpt-5-mini", max_completion_tokens=500, temperature=1)
        assert ok.status_code == 200
        usage = ok.json()["usage"]
        assert usage["completion_tokens_details"]["reasoning_tokens"] == 64
        content = ok.json()["choices"][0]["message"]["content"]
        assert usage["completion_tokens"] == count_tokens(content) + 64
        # Ordinary models keep taking both.
        assert _post(llm, model="gpt-4.1-mini", max_tokens=100, temperature=0).status_code == 200


def test_a_request_beyond_the_context_window_is_a_400() -> None:
    with LLMEmulator(context_tokens=300) as llm:
        response = _post(llm, max_tokens=400)
        assert response.status_code == 400
        assert _error(response)["code"] == "context_length_exceeded"
        assert "maximum context length is 300 tokens" in _error(response)["message"]
        assert _post(llm, max_tokens=10).status_code == 200


def test_insufficient_quota_after_the_configured_answers() -> None:
    with LLMEmulator(quota_requests=2) as llm:
        assert [_post(llm).status_code for _ in range(2)] == [200, 200]
        refused = _post(llm)
        assert refused.status_code == 429
        error = _error(refused)
        assert error["code"] == "insufficient_quota" and error["type"] == "insufficient_quota"
        assert "exceeded your current quota" in error["message"]
        with pytest.raises(openai.RateLimitError) as raised:
            client(llm, max_retries=0).chat.completions.create(
                model="gpt-4o-mini", messages=messages()
            )
        assert raised.value.code == "insufficient_quota"


def test_per_minute_quotas_send_x_ratelimit_headers_and_429_beyond() -> None:
    with LLMEmulator(rpm=2, tpm=1_000_000) as llm:
        first, second, third = (_post(llm) for _ in range(3))
        assert first.headers["x-ratelimit-limit-requests"] == "2"
        assert first.headers["x-ratelimit-remaining-requests"] == "1"
        assert second.headers["x-ratelimit-remaining-requests"] == "0"
        assert int(second.headers["x-ratelimit-remaining-tokens"]) < 1_000_000
        assert second.headers["x-ratelimit-reset-requests"].endswith("s")
        assert third.status_code == 429 and _error(third)["code"] == "rate_limit_exceeded"
        assert third.headers["x-ratelimit-remaining-requests"] == "0"
    with LLMEmulator() as quiet:
        assert not any(h.startswith("x-ratelimit") for h in _post(quiet).headers)
