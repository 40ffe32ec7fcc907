"""Fixtures of the generate tests: collected configs written with SQL, emulated LLM endpoints."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from starlette.requests import Request
from starlette.responses import Response

from dynosaur.emulators._server import BackgroundServer, json_response
from dynosaur.emulators.llm import LLMEmulator
from dynosaur.model import FieldInfo
from dynosaur.settings import ModelPrice, Settings

FIELDS = [
    FieldInfo("question", "string"),
    FieldInfo("passage", "string"),
    FieldInfo("answer", "string"),
    FieldInfo("label", "class_label", ("no", "yes")),
]


def insert_configs(
    engine: Engine, n: int, *, prefix: str = "org/set", summary_every: int = 2
) -> list[int]:
    """``n`` collected configs of ``n`` datasets (every ``summary_every``-th has a card summary)."""
    ids: list[int] = []
    with engine.begin() as conn:
        for i in range(n):
            summary = f"A dataset of questions about topic {i}." if i % summary_every == 0 else None
            dataset_row = conn.execute(
                sa.text(
                    "INSERT INTO hub_dataset (dataset_id, sha, discovered_via, hub_url, "
                    "pretty_name, summary, licenses, languages, status) VALUES (:d, :sha, "
                    "'explicit', :url, :pretty, :summary, '{mit}', '{en}', 'collected') "
                    "RETURNING id"
                ),
                {
                    "d": f"{prefix}{i}",
                    "sha": f"sha{i}",
                    "url": f"https://huggingface.co/datasets/{prefix}{i}",
                    "pretty": f"Set {i}",
                    "summary": summary,
                },
            ).scalar_one()
            rows = [
                {
                    "question": f"Q{i}.{r}: is {r} even?",
                    "passage": f"Passage {i}.{r} " + "word " * 30,
                    "answer": f"answer {r}",
                    "label": "yes" if r % 2 == 0 else "no",
                }
                for r in range(5)
            ]
            config_id = conn.execute(
                sa.text(
                    "INSERT INTO dataset_config (hub_dataset_id, config_name, fields, "
                    "sample_split, sample_rows, status) VALUES (:h, 'default', "
                    "CAST(:fields AS jsonb), 'train', CAST(:rows AS jsonb), 'collected') "
                    "RETURNING id"
                ),
                {
                    "h": dataset_row,
                    "fields": json.dumps([f.to_json() for f in FIELDS]),
                    "rows": json.dumps(rows),
                },
            ).scalar_one()
            ids.append(config_id)
    return ids


def rows_of(engine: Engine, query: str, **params: Any) -> list[sa.Row[Any]]:
    """Every row of a query."""
    with engine.connect() as conn:
        return list(conn.execute(sa.text(query), params).all())


def scalar_of(engine: Engine, query: str, **params: Any) -> Any:
    """The first column of a query's first row (None without rows)."""
    with engine.connect() as conn:
        return conn.execute(sa.text(query), params).scalar()


def cli_env(settings: Settings, base_url: str, **extra: str) -> dict[str, str]:
    """The ``DYNOSAUR_`` environment of a command run against the test store and an endpoint."""
    return {
        "DYNOSAUR_DATABASE_URL": str(settings.database_url),
        "DYNOSAUR_READER_ROLE": settings.reader_role,
        "DYNOSAUR_DATA_DIR": str(settings.data_dir),
        "DYNOSAUR_LLM_BASE_URL": base_url,
        "DYNOSAUR_LLM_MODEL": "gpt-4o-mini",
        **extra,
    }


def fast_settings(settings: Settings, base_url: str, **overrides: Any) -> Settings:
    """Settings for an emulated endpoint: short timeouts and backoffs, a known price."""
    values: dict[str, Any] = {
        "llm_base_url": base_url.rstrip("/"),
        "llm_model": "gpt-4o-mini",
        "llm_timeout_s": 2.0,
        "llm_backoff_s": 0.01,
        "llm_backoff_max_s": 0.05,
        "llm_max_retries": 6,
        "llm_concurrency": 8,
        "llm_prices": {"gpt-4o-mini": ModelPrice(input=0.15, output=0.60)},
        "budget_usd": None,
    }
    values.update(overrides)
    return settings.model_copy(update=values)


@pytest.fixture
def emulator() -> Iterator[Callable[..., LLMEmulator]]:
    """Start LLM emulators with the given knobs; all are stopped after the test."""
    started: list[LLMEmulator] = []

    def start(**knobs: Any) -> LLMEmulator:
        llm = LLMEmulator(**knobs).start()
        started.append(llm)
        return llm

    yield start
    for llm in started:
        llm.stop()


@dataclass
class Scripted:
    """A chat-completions endpoint that plays a script of (status, body, headers) answers."""

    script: list[tuple[int, Any, dict[str, str]]]
    requests: list[dict[str, Any]] = field(default_factory=list)
    server: BackgroundServer | None = None

    @property
    def base_url(self) -> str:
        assert self.server is not None
        return self.server.origin + "/v1"

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        body = json.loads(await request.body() or b"{}")
        self.requests.append({"headers": dict(request.headers), "body": body})
        status, payload, headers = self.script[min(len(self.requests), len(self.script)) - 1]
        if callable(payload):
            payload = payload(request)
        if isinstance(payload, str):
            response: Response = Response(payload, status, headers=headers)
        else:
            response = json_response(payload, status, headers)
        await response(scope, receive, send)


def completion(content: str, *, finish_reason: str = "stop", usage: bool = True) -> dict:
    """A chat completion body as OpenAI sends it."""
    body: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": finish_reason,
            }
        ],
    }
    if usage:
        body["usage"] = {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}
    return body


def error(status: int, message: str = "error") -> dict:
    """An OpenAI-shaped error body."""
    return {"error": {"message": message, "type": "error", "param": None, "code": None}}


@pytest.fixture
def scripted() -> Iterator[Callable[[list[tuple[int, Any, dict[str, str]]]], Scripted]]:
    """Start scripted endpoints; all are stopped after the test."""
    started: list[BackgroundServer] = []

    def start(script: list[tuple[int, Any, dict[str, str]]]) -> Scripted:
        app = Scripted(script)
        app.server = BackgroundServer(app)
        app.server.start()
        started.append(app.server)
        return app

    yield start
    for server in started:
        server.stop()
