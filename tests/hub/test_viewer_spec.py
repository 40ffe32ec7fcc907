"""Contract tests against the Dataset Viewer's own OpenAPI spec (``../shared/reference``):

- the viewer emulator's answers validate against the spec's response schemas;
- every example response of the spec, served as it is by a replay server (a real HTTP server on
  127.0.0.1), is read by our client into the outcome collect gives it: collected, skipped (a
  permanent answer, with its reason), deferred (a later run), or failed (422: our request was
  wrong, retrying cannot help).

Skipped when ``../shared`` is absent.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from dynosaur.emulators._server import BackgroundServer
from dynosaur.emulators.hub import HubEmulator
from dynosaur.errors import HubRequestError
from dynosaur.hub.client import HubClient
from dynosaur.hub.collect import viewer_error_outcome
from dynosaur.hub.features import features_from_viewer
from dynosaur.settings import Settings
from tests.conftest import SHARED
from tests.emulators.conftest import AFTER_ALL, SQUAD

SPEC_PATH = SHARED / "reference" / "dataset-viewer-openapi.json"
ENDPOINTS = ("/splits", "/first-rows", "/rows", "/info", "/is-valid")

pytestmark = [
    pytest.mark.shared_snapshot,
    pytest.mark.skipif(not SPEC_PATH.is_file(), reason="../shared/reference is absent"),
]


def _spec() -> dict[str, Any]:
    return json.loads(Path(SPEC_PATH).read_text(encoding="utf-8")) if SPEC_PATH.is_file() else {}


def _resolve(spec: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in item:
        node: Any = spec
        for part in item["$ref"].lstrip("#/").split("/"):
            node = node[part]
        item = node
    return item


def _examples() -> list[tuple[str, int, str, str, Any]]:
    """(path, status, content type, example name, value) of every example of our endpoints."""
    spec = _spec()
    found = []
    for path in ENDPOINTS:
        for status, response in spec.get("paths", {}).get(path, {})["get"]["responses"].items():
            for ctype, content in _resolve(spec, response).get("content", {}).items():
                for name, example in (content.get("examples") or {}).items():
                    value = _resolve(spec, example)["value"]
                    found.append((path, int(status), ctype, name, value))
    return found


# The X-Error-Code the viewer sends with each error example (the spec gives the bodies, and the
# codes each status may carry), and the outcome collect must give the dataset.
_CACHED_ERROR = {
    "/splits": "EmptyDatasetError",
    "/first-rows": "StreamingRowsError",
    "/info": "InfoError",
}


def expected(path: str, status: int, ctype: str, name: str) -> tuple[str | None, str]:
    """(X-Error-Code to send, expected outcome) of one example."""
    if status == 200:
        return None, "collected"
    if ctype == "text/plain":
        return None, "deferred"
    if status == 401:
        return "ExternalUnauthenticatedError", "skipped"
    if status == 404:
        known = name.startswith("inexistent config") or name.startswith("inexistent split")
        if known or name == "error in the dataset itself":
            return "ResponseNotFound", "skipped"
        return "ExternalAuthenticatedError", "skipped"
    if status == 422:
        return "MissingRequiredParameter", "failed"
    if name == "response not ready":
        return "ResponseNotReady", "deferred"
    if name == "unexpected error":
        return "UnexpectedError", "deferred"
    if name == "error in the dataset itself":
        return _CACHED_ERROR[path], "skipped"
    if status == 501 and "too many" in name:
        return "DatasetWithTooManyConfigsError", "skipped"
    if status == 501 and "blocked" in name:
        return "DatasetInBlockListError", "skipped"
    raise AssertionError(f"no expectation for the spec's example {path} {status} {name!r}")


class Replay:
    """An ASGI app answering every request with the answer set last (status, type, body,
    headers); counts the requests."""

    def __init__(self) -> None:
        self.answer: Response = Response("nothing set", 500)
        self.requests = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        self.requests += 1
        await self.answer(scope, receive, send)


@pytest.fixture(scope="module")
def replay() -> Iterator[tuple[Replay, str]]:
    app = Replay()
    with BackgroundServer(app) as server:
        yield app, server.origin


EXAMPLES = _examples()


@pytest.mark.parametrize(
    ("path", "status", "ctype", "name", "value"),
    EXAMPLES,
    ids=[f"{p}-{s}-{n}" for p, s, _, n, _ in EXAMPLES],
)
def test_every_example_of_the_spec_gets_its_outcome(
    replay: tuple[Replay, str],
    settings: Settings,
    path: str,
    status: int,
    ctype: str,
    name: str,
    value: Any,
) -> None:
    app, url = replay
    code, outcome = expected(path, status, ctype, name)
    body = value if isinstance(value, str) else json.dumps(value)
    headers = {"X-Error-Code": code} if code else {}
    app.answer = Response(body, status, headers=headers, media_type=ctype)
    app.requests = 0
    s = settings.model_copy(
        update={
            "hub_endpoint": url,
            "viewer_url": url,
            "hub_backoff_s": 0.0,
            "hub_backoff_max_s": 0.0,
            "hub_max_retries": 2,
        }
    )

    async def ask() -> Any:
        async with HubClient(s) as client:
            return await client.viewer(path.lstrip("/"), "some/dataset", config="c", split="s")

    try:
        answer = asyncio.run(ask())
    except HubRequestError as exc:
        assert viewer_error_outcome(exc) == outcome, str(exc)
        if outcome == "skipped":
            assert exc.reason and app.requests == 1  # permanent: never retried
        if code in ("ResponseNotReady",):
            assert app.requests == 1  # not ready: deferred at once, no retry now
        if outcome == "deferred" and code != "ResponseNotReady":
            assert app.requests == 3  # a server error: retried, then deferred
        return
    assert outcome == "collected"
    assert isinstance(answer, dict)
    if path in ("/first-rows", "/rows"):  # the features read, as collect reads them
        assert features_from_viewer(answer["features"])
    if path == "/splits":
        assert answer["splits"]


def test_every_permanent_code_of_the_spec_has_a_reason_family() -> None:
    spec = _spec()
    codes = {
        schema["const"]
        for key, schema in spec["components"]["schemas"].items()
        if key.startswith("X-Error-Code-")
    }
    from dynosaur.hub.client import classify_answer

    outcomes = {}
    statuses = {
        "DatasetInBlockListError": 501,
        "DatasetWithTooManyConfigsError": 501,
        "ExternalUnauthenticatedError": 401,
        "MissingRequiredParameter": 422,
        "ExternalAuthenticatedError": 404,
        "ResponseNotFound": 404,
    }
    for code in sorted(codes):
        status = statuses.get(code, 500)
        found = classify_answer("x", "d", status, code, {}, "")
        transient = not isinstance(found, HubRequestError) or found.transient
        outcomes[code] = (
            "deferred" if transient else viewer_error_outcome(found)  # type: ignore[arg-type]
        )
    assert outcomes == {
        "DatasetInBlockListError": "skipped",
        "DatasetWithTooManyConfigsError": "skipped",
        "ExternalAuthenticatedError": "skipped",
        "ExternalUnauthenticatedError": "skipped",
        "MissingRequiredParameter": "failed",
        "ResponseNotFound": "skipped",
        "ResponseNotReadyError": "deferred",
        "RowsPostProcessingError": "skipped",
        "StreamingRowsError": "skipped",
        "UnexpectedError": "deferred",
    }


# --- the emulator's answers against the spec's schemas ----------------------------------------


def _any_of(node: Any) -> Any:
    """The schema with ``oneOf`` read as ``anyOf``: the spec's cell types overlap (a string is
    a ``ValueCell`` and a ``JsonCell``), so even the real viewer's rows match several."""
    if isinstance(node, dict):
        return {("anyOf" if k == "oneOf" else k): _any_of(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_any_of(v) for v in node]
    return node


def _validator(schema_name: str) -> Any:
    import jsonschema

    components = _any_of(_spec()["components"])
    schema = {"$ref": f"#/components/schemas/{schema_name}", "components": components}
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize(
    ("endpoint", "params", "schema"),
    [
        ("splits", {}, "SplitsResponse"),
        ("first-rows", {"config": "plain_text", "split": "train"}, "FirstRowsResponse"),
        ("rows", {"config": "plain_text", "split": "train", "length": 5}, "PaginatedResponse"),
        ("info", {"config": "plain_text"}, "InfoResponse"),
        ("info", {}, "InfoResponse"),
        ("is-valid", {}, "IsValidResponse"),
    ],
)
def test_the_emulators_answers_validate_against_the_spec(
    endpoint: str, params: dict[str, Any], schema: str
) -> None:
    with (
        HubEmulator(now=AFTER_ALL, truncate_cells=20, viewer_pending=[f"{SQUAD}=x"]) as hub,
        httpx.Client(base_url=hub.url, timeout=60) as client,
    ):
        answer = client.get(f"/{endpoint}", params={"dataset": SQUAD, **params})
    assert answer.status_code == 200
    errors = [e.message for e in _validator(schema).iter_errors(answer.json())]
    assert errors == []


@pytest.mark.parametrize(
    ("knobs", "status", "code"),
    [
        ({"viewer_errors": [f"{SQUAD}=DatasetInBlockListError"]}, 501, "DatasetInBlockListError"),
        ({"viewer_not_ready": [SQUAD]}, 500, "ResponseNotReady"),
        ({"viewer_transient": [f"{SQUAD}=UnexpectedError"]}, 500, "UnexpectedError"),
        ({}, 404, "ResponseNotFound"),
    ],
)
def test_the_emulators_errors_validate_against_the_spec(
    knobs: dict[str, Any], status: int, code: str
) -> None:
    params = {"dataset": SQUAD, "config": "plain_text" if knobs else "nope", "split": "train"}
    with (
        HubEmulator(now=AFTER_ALL, **knobs) as hub,
        httpx.Client(base_url=hub.url, timeout=60) as client,
    ):
        answer = client.get("/first-rows", params=params)
    assert (answer.status_code, answer.headers["x-error-code"]) == (status, code)
    assert [e.message for e in _validator("CustomError").iter_errors(answer.json())] == []


def test_a_plain_text_500_is_text_without_a_code() -> None:
    with (
        HubEmulator(now=AFTER_ALL, viewer_transient=[f"{SQUAD}=text"]) as hub,
        httpx.Client(base_url=hub.url, timeout=60) as client,
    ):
        answer = client.get("/splits", params={"dataset": SQUAD})
    assert answer.status_code == 500
    assert answer.headers["content-type"].startswith("text/plain")
    assert "x-error-code" not in answer.headers
