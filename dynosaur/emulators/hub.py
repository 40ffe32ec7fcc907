"""The Hub emulator: an offline Hugging Face Hub and Dataset Viewer, served from a snapshot folder.

One HTTP server answers both the Hub API (``HF_ENDPOINT``) and the Dataset Viewer API, with the
paths, field names, headers and error answers the real services use and the installed
``huggingface_hub`` client reads. This module holds the Hub API and puts the emulator together:

- ``GET /api/datasets`` (``HfApi.list_datasets``): sort, direction, limit, search, filter,
  author, gated, full, expand, and ``Link: <...cursor=...>; rel="next"`` pagination;
- ``GET /api/datasets/{id}[/revision/{rev}]`` (``HfApi.dataset_info``);
- ``GET|HEAD /datasets/{id}/resolve/{rev}/{file}`` (``hf_hub_download``, ``DatasetCard.load``)
  with ``ETag``, ``X-Repo-Commit``, ``Content-Length``;
- the viewer's ``/is-valid``, ``/splits``, ``/info``, ``/first-rows``, ``/rows``: :mod:`.viewer`.

A request goes through the request log and the in-flight gauge, then fault injection
(:mod:`.faults`: latency, seeded 429 and 5xx), then Starlette's router. The datasets, the
simulated now, gated datasets and viewers not ready live in :class:`~.repos.Repos`. Errors
carry the real status, ``X-Error-Code`` and a JSON ``{"error": ...}`` body; no request can crash
the server. The knobs are :class:`~.options.HubOptions`.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import itertools
import json
import logging
import time
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import Message, Receive, Scope, Send

from dynosaur.emulators._server import BackgroundServer, RequestLog, ServedEmulator, json_response
from dynosaur.emulators.faults import FaultInjection, Faults, InFlight, Quotas, request_id
from dynosaur.emulators.options import MAX_PAGE, HubOptions
from dynosaur.emulators.repos import ErrorAnswer, Repos
from dynosaur.emulators.snapshot import (
    DatasetEntry,
    Revision,
    Snapshot,
    format_time,
    git_blob_sha,
)
from dynosaur.emulators.uploads import PushedRepos, UploadAPI
from dynosaur.emulators.viewer import MAX_ROWS_LENGTH, PlainTextError, Viewer

log = logging.getLogger(__name__)

_SORT_KEYS = ("createdAt", "lastModified", "downloads", "likes", "trendingScore")
_EXPANDABLE = frozenset(
    {
        "author",
        "cardData",
        "citation",
        "createdAt",
        "description",
        "disabled",
        "downloads",
        "downloadsAllTime",
        "gated",
        "lastModified",
        "likes",
        "mainSize",
        "paperswithcode_id",
        "private",
        "resourceGroup",
        "sha",
        "siblings",
        "tags",
        "trendingScore",
        "usedStorage",
    }
)
# What a plain listing item holds (no full, no expand).
_LIST_DEFAULT = (
    "author",
    "disabled",
    "gated",
    "lastModified",
    "likes",
    "private",
    "sha",
    "downloads",
    "tags",
    "createdAt",
    "trendingScore",
)
_NOT_FOUND_PAGE = "Sorry, we can't find the page you are looking for."

# Knobs fixed when the emulator is built (the others may change between requests).
_FIXED = ("snapshot", "seed", "request_log_path")


def _flag(value: str | None) -> bool | None:
    if value is None:
        return None
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes"):
        return True
    if lowered in ("0", "false", "no"):
        return False
    raise ErrorAnswer(400, f"Invalid boolean value: {value!r}")


def _int_param(request: Request, name: str, default: int | None = None) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ErrorAnswer(400, f'"{name}" must be an integer, got {raw!r}') from None


def _object_id(entry: DatasetEntry) -> str:
    # Mongo-like: creation seconds, then a stable hash of the id (as the Hub's _id looks).
    seconds = int(entry.created_at.timestamp()) & 0xFFFFFFFF
    return f"{seconds:08x}" + hashlib.sha1(entry.id.encode()).hexdigest()[:16]


def _dataset_id(request: Request) -> str:
    """``namespace/name`` (or a canonical ``name``) from the route's path parameters."""
    params = request.path_params
    return f"{params['namespace']}/{params['name']}" if "namespace" in params else params["name"]


class HubAPI:
    """The Hub API's endpoints over :class:`~dynosaur.emulators.repos.Repos`."""

    def __init__(self, repos: Repos, page_size: int) -> None:
        self.repos = repos
        self.snapshot = repos.snapshot
        self.page_size = page_size

    def routes(self) -> list[BaseRoute]:
        """The Hub API's routes (GET, and HEAD with them); ids are ``namespace/name`` or a
        canonical ``name``."""
        info, resolve = self.dataset_info, self.resolve
        return [
            Route("/api/datasets", self.list_datasets, methods=["GET"]),
            Mount(
                "/api/datasets",
                routes=[
                    Route("/{name}/revision/{revision:path}", info, methods=["GET"]),
                    Route("/{namespace}/{name}/revision/{revision:path}", info, methods=["GET"]),
                    Route("/{name}", info, methods=["GET"]),
                    Route("/{namespace}/{name}", info, methods=["GET"]),
                ],
            ),
            Mount(
                "/datasets",
                routes=[
                    Route("/{name}/resolve/{revision}/{filename:path}", resolve, methods=["GET"]),
                    Route(
                        "/{namespace}/{name}/resolve/{revision}/{filename:path}",
                        resolve,
                        methods=["GET"],
                    ),
                ],
            ),
        ]

    def _relicense(self, entry: DatasetEntry) -> dict[str, str]:
        """The card license a test set with the ``relicensed`` knob."""
        return {"license": self.repos.relicensed[entry.id]}

    def _item(
        self, entry: DatasetEntry, revision: Revision, fields: Iterable[str], blobs: bool = False
    ) -> dict[str, Any]:
        out: dict[str, Any] = {"_id": _object_id(entry), "id": entry.id}
        card = None
        for name in fields:
            if name in ("cardData", "tags", "description", "paperswithcode_id") and card is None:
                card = self.snapshot.card(entry.id)
            if name == "author":
                out["author"] = entry.id.split("/")[0] if "/" in entry.id else None
            elif name == "sha":
                out["sha"] = revision.sha
            elif name == "lastModified":
                out["lastModified"] = format_time(revision.last_modified)
            elif name == "createdAt":
                out["createdAt"] = format_time(entry.created_at)
            elif name == "private":
                out["private"] = False
            elif name == "disabled":
                out["disabled"] = False
            elif name == "gated":
                out["gated"] = self.repos.gated(entry) or False
            elif name == "downloads":
                out["downloads"] = entry.downloads
            elif name == "downloadsAllTime":
                out["downloadsAllTime"] = entry.downloads * 7
            elif name == "likes":
                out["likes"] = entry.likes
            elif name == "trendingScore":
                out["trendingScore"] = entry.likes % 17
            elif name == "tags":
                out["tags"] = card.tags if card else ["region:us"]
            elif name == "cardData":
                if card is not None and card.data is not None:
                    out["cardData"] = card.data
                if entry.id in self.repos.relicensed:
                    out["cardData"] = {**out.get("cardData", {}), **self._relicense(entry)}
            elif name == "description":
                out["description"] = card.summary if card else None
            elif name == "citation":
                out["citation"] = self._citation(entry)
            elif name == "paperswithcode_id":
                data = (card.data if card else None) or {}
                out["paperswithcode_id"] = data.get("paperswithcode_id")
            elif name == "siblings":
                out["siblings"] = self._siblings(entry, blobs)
            elif name in ("usedStorage", "mainSize"):
                out[name] = sum(
                    len(self.snapshot.file_bytes(entry.id, f) or b"")
                    for f in self.snapshot.repo_files(entry.id)
                )
            elif name == "resourceGroup":
                out["resourceGroup"] = None
        return out

    def _citation(self, entry: DatasetEntry) -> str | None:
        for info in self.snapshot.infos(entry.id).values():
            if isinstance(info, dict) and info.get("citation"):
                return str(info["citation"]).strip()
        return None

    def _siblings(self, entry: DatasetEntry, blobs: bool) -> list[dict[str, Any]]:
        siblings: list[dict[str, Any]] = []
        for name in self.snapshot.repo_files(entry.id):
            item: dict[str, Any] = {"rfilename": name}
            if blobs:
                content = self.snapshot.file_bytes(entry.id, name) or b""
                item.update(size=len(content), blobId=git_blob_sha(content))
            siblings.append(item)
        return siblings

    async def list_datasets(self, request: Request) -> Response:
        """``HfApi.list_datasets``: a sorted, filtered page, and a ``Link`` to the next one."""
        params = request.query_params
        now = self.repos.now()
        sort = params.get("sort") or "trendingScore"
        if sort not in _SORT_KEYS:
            raise ErrorAnswer(400, f'"sort" must be one of [{", ".join(_SORT_KEYS)}], got {sort!r}')
        direction = _int_param(request, "direction", -1)
        if direction not in (-1, 1):
            raise ErrorAnswer(400, '"direction" must be one of [-1, 1]')
        limit = _int_param(request, "limit")
        if limit is not None and limit < 1:
            raise ErrorAnswer(400, '"limit" must be greater than or equal to 1')
        full = _flag(params.get("full"))
        expand = params.getlist("expand")
        if expand and full:
            raise ErrorAnswer(400, "Cannot use both 'full' and 'expand'")
        unknown = [e for e in expand if e not in _EXPANDABLE]
        if unknown:
            raise ErrorAnswer(400, f'"expand" contains unknown properties: {", ".join(unknown)}')
        gated = _flag(params.get("gated"))
        searches = [s.lower() for s in params.getlist("search") if s]
        filters = [f for f in params.getlist("filter") if f]
        author = params.get("author")

        rows: list[tuple[Any, str, DatasetEntry, Revision]] = []
        for entry in self.snapshot.entries.values():
            if not entry.exists_at(now):
                continue
            if author and not entry.id.startswith(author + "/"):
                continue
            if any(s not in entry.id.lower() for s in searches):
                continue
            if gated is not None and bool(self.repos.gated(entry)) != gated:
                continue
            if filters:
                card = self.snapshot.card(entry.id)
                tags = set(card.tags if card else ())
                if any(f not in tags for f in filters):
                    continue
            revision = entry.revision_at(now)
            rows.append((self._sort_value(sort, entry, revision), entry.id, entry, revision))
        rows.sort(key=lambda r: (r[0], r[1]), reverse=direction == -1)

        cursor = params.get("cursor")
        if cursor:
            after = self._decode_cursor(cursor)
            try:
                if direction == -1:
                    rows = [r for r in rows if (r[0], r[1]) < after]
                else:
                    rows = [r for r in rows if (r[0], r[1]) > after]
            except TypeError:  # a cursor made for another sort
                raise ErrorAnswer(400, "Invalid cursor") from None
        size = min(limit or self.page_size, self.page_size)
        page, more = rows[:size], len(rows) > size

        fields = (
            tuple(_EXPANDABLE - {"resourceGroup"})
            if full
            else tuple(expand)
            if expand
            else _LIST_DEFAULT
        )
        items = [self._item(e, rev, fields) for _, _, e, rev in page]
        headers: dict[str, str] = {}
        if more:
            last = page[-1]
            token = json.dumps([last[0], last[1]], separators=(",", ":"))
            query = [(k, v) for k, v in params.multi_items() if k != "cursor"]
            query.append(("cursor", base64.urlsafe_b64encode(token.encode()).decode()))
            next_url = request.url.replace(query=urlencode(query))
            headers["Link"] = f'<{next_url}>; rel="next"'
        return json_response(items, headers=headers)

    @staticmethod
    @staticmethod
    def _sort_value(sort: str, entry: DatasetEntry, revision: Revision) -> Any:
        if sort == "createdAt":
            return format_time(entry.created_at)
        if sort == "lastModified":
            return format_time(revision.last_modified)
        if sort == "downloads":
            return entry.downloads
        if sort == "likes":
            return entry.likes
        return entry.likes % 17

    @staticmethod
    def _decode_cursor(cursor: str) -> tuple[Any, str]:
        try:
            value, ident = json.loads(base64.urlsafe_b64decode(cursor.encode()))
            return value, str(ident)
        except (binascii.Error, ValueError, TypeError):
            raise ErrorAnswer(400, "Invalid cursor") from None

    async def dataset_info(self, request: Request) -> Response:
        """``HfApi.dataset_info``: every field (or those of ``expand``) at a revision."""
        entry = self.repos.entry(_dataset_id(request), request)
        shown = self.repos.revision(entry, request.path_params.get("revision", "main"))
        expand = request.query_params.getlist("expand")
        unknown = [e for e in expand if e not in _EXPANDABLE]
        if unknown:
            raise ErrorAnswer(400, f'"expand" contains unknown properties: {", ".join(unknown)}')
        blobs = bool(_flag(request.query_params.get("blobs")))
        fields = expand or sorted(_EXPANDABLE - {"resourceGroup", "mainSize"})
        return json_response(self._item(entry, shown, fields, blobs))

    async def resolve(self, request: Request) -> Response:
        """A repo file at a revision (``hf_hub_download``); 401/403 ``GatedRepo`` when gated."""
        filename = request.path_params["filename"]
        if not filename:
            raise ErrorAnswer(404, _NOT_FOUND_PAGE)
        entry = self.repos.entry(_dataset_id(request), request)
        if self.repos.gated(entry):
            if "authorization" in request.headers:
                raise ErrorAnswer(
                    403,
                    f"Access to dataset {entry.id} is restricted and you are not in the "
                    f"authorized list. Visit {request.base_url}datasets/{entry.id} to ask for "
                    "access.",
                    "GatedRepo",
                )
            raise ErrorAnswer(
                401,
                f"Access to dataset {entry.id} is restricted. You must have access to it and be "
                "authenticated to access it. Please log in.",
                "GatedRepo",
            )
        shown = self.repos.revision(entry, request.path_params["revision"])
        content = self.snapshot.file_bytes(entry.id, filename)
        if content is None:
            raise ErrorAnswer(404, "Entry not found", "EntryNotFound", {"X-Repo-Commit": shown.sha})
        return Response(
            content,
            headers={
                "ETag": f'"{git_blob_sha(content)}"',
                "X-Repo-Commit": shown.sha,
                "Accept-Ranges": "bytes",
                "Content-Disposition": f"inline; filename*=UTF-8''{filename}; "
                f'filename="{filename}";',
                "Cache-Control": "public, max-age=3600",
            },
            media_type="text/plain; charset=utf-8"
            if filename.endswith(".md")
            else "application/json",
        )


async def _plain_text_error(request: Request, exc: Exception) -> Response:
    """A plain-text 500, no error code: what a proxy or a crashed worker answers."""
    return PlainTextResponse(str(exc), 500, headers={"X-Request-Id": request_id(request.scope)})


async def _error_answer(request: Request, exc: Exception) -> Response:
    """Any error as the Hub answers it: ours as raised, routing errors (404, 405) and bugs
    (500 ``UnexpectedApiError``, logged by :class:`HubApp`) in the same JSON shape."""
    if isinstance(exc, ErrorAnswer):
        answer = exc
    elif isinstance(exc, HTTPException) and exc.status_code == 405:
        answer = ErrorAnswer(
            405,
            f"Method {request.method} is not allowed on {request.url.path}",
            headers=dict(exc.headers or {}),
        )
    elif isinstance(exc, HTTPException):
        answer = ErrorAnswer(exc.status_code, _NOT_FOUND_PAGE)
    else:
        answer = ErrorAnswer(500, "Internal Error", "UnexpectedApiError")
    echo = request.scope.get("state", {}).get("echo_auth")
    if echo and "authorization" in request.headers:  # a careless server, for leak tests
        answer = ErrorAnswer(
            answer.status,
            f"{answer.message} (request had Authorization: {request.headers['authorization']})",
            answer.code,
            answer.headers,
        )
    return answer.response(request_id(request.scope))


class HubApp:
    """The ASGI app: request log and in-flight gauge, then fault injection, then the router
    over the Hub API and viewer routes. Knobs are set from the tests' thread between requests."""

    def __init__(self, options: HubOptions) -> None:
        self.snapshot = Snapshot(options.snapshot)
        self.repos = Repos(self.snapshot)
        self.api = HubAPI(self.repos, options.page_size)
        self.viewer = Viewer(self.repos)
        self.uploads = UploadAPI(self.api.resolve, self.api.dataset_info)
        self.faults = Faults(options)
        self.quotas = Quotas(options)
        self.in_flight = InFlight()
        self.log = RequestLog(options.request_log_path)
        self.echo_auth = False
        self.apply(options)
        router = Starlette(
            routes=[*self.uploads.routes(), *self.api.routes(), *self.viewer.routes()],
            exception_handlers={
                PlainTextError: _plain_text_error,
                ErrorAnswer: _error_answer,
                HTTPException: _error_answer,
                Exception: _error_answer,
            },
        )
        self._app = FaultInjection(router, self.faults, self.quotas)
        self._ids = itertools.count(1)

    def apply(self, options: HubOptions) -> None:
        """Take the knobs of ``options`` that may change while serving (all but the snapshot
        and the seed)."""
        self.repos.now_override = options.now
        self.repos.gated_ids = set(options.gated)
        self.repos.viewer_not_ready = set(options.viewer_not_ready)
        self.repos.apply_viewer(options)
        self.repos.deleted_ids = set(options.deleted)
        self.repos.unavailable_ids = set(options.unavailable)
        self.repos.relicensed = dict(pair.split("=", 1) for pair in options.relicensed)
        self.api.page_size = options.page_size
        self.faults.apply(options)
        self.quotas.apply(options)
        self.echo_auth = options.echo_auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        started = time.time()
        entry: dict[str, Any] = {
            "time": started,
            "method": scope["method"],
            "path": scope["path"],
            "query": dict(Request(scope).query_params),
        }
        state = scope.setdefault("state", {})
        state["request_id"] = f"Root=1-{next(self._ids):08x}"
        state["echo_auth"] = self.echo_auth
        status = 0

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        async with self.in_flight.entered():
            try:
                await self._app(scope, receive, capture)
            except Exception:  # answered 500 by _error_answer, re-raised: logged, survived
                log.exception("the Hub emulator failed on %s", entry["path"])
        entry["status"] = status
        quota = state.get("quota")
        if quota is not None:  # the request counted against a quota: its bucket and window
            entry["bucket"], entry["window"] = quota
        self.log.append(entry)


class HubEmulator(ServedEmulator):
    """The Hub emulator as a context manager: a real HTTP server on 127.0.0.1.

    Built from :class:`~.options.HubOptions`, or from a snapshot folder and knobs as keywords
    (the options' field names)::

        with HubEmulator(now=datetime(2024, 3, 2, tzinfo=UTC)) as hub:
            HfApi(endpoint=hub.url).list_datasets(sort="created_at", limit=5)
    """

    def __init__(
        self,
        options: HubOptions | Path | str | None = None,
        /,
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        **knobs: Any,
    ) -> None:
        if isinstance(options, HubOptions):
            if knobs:
                raise TypeError("give the knobs either as HubOptions or as keywords, not both")
        elif options is not None:
            options = HubOptions(snapshot=Path(options), **knobs)
        else:
            options = HubOptions(**knobs)
        self.options = options
        self.app = HubApp(options)
        self.snapshot = self.app.snapshot
        self._server = BackgroundServer(self.app, host=host, port=port)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``: the Hub endpoint and the Dataset Viewer base URL."""
        return self._server.origin

    def configure(self, **changes: Any) -> None:
        """Change knobs while serving (``now``, fault rates, latency, gated, ...); checked as
        :class:`~.options.HubOptions` checks them. The snapshot and the seed are fixed."""
        fixed = [name for name in _FIXED if name in changes]
        if fixed:
            raise ValueError(f"{', '.join(fixed)} cannot change once the emulator is built")
        self.options = dataclasses.replace(self.options, **changes)
        self.app.apply(self.options)

    @property
    def now(self) -> datetime | None:
        """The simulated now (None = the real clock); settable between calls."""
        return self.options.now

    @now.setter
    def now(self, value: datetime | str | None) -> None:
        self.configure(now=value)

    @property
    def request_log(self) -> list[dict[str, Any]]:
        """One dict per answered request: time, method, path, query, status."""
        return self.app.log.entries()

    def requests_to(self, path: str) -> list[dict[str, Any]]:
        """The request log's entries of one path (``/api/datasets``, ``/splits`` ...)."""
        return [entry for entry in self.app.log.entries() if entry["path"] == path]

    @property
    def status_counts(self) -> dict[int, int]:
        """Requests answered per HTTP status since the start."""
        return dict(self.app.log.statuses())

    @property
    def peak_in_flight(self) -> int:
        """The most requests the server was handling at once, since the start."""
        return self.app.in_flight.peak

    def hold(self, n: int, timeout_s: float = 60.0) -> None:
        """Hold requests until ``n`` are in flight at once (or ``timeout_s`` passed), then
        serve as usual: shows that a client keeps ``n`` requests in flight, whatever the
        machine's speed."""
        self.app.in_flight.hold(n, timeout_s)

    def set_revision(
        self, dataset_id: str, sha: str, last_modified: datetime | str | None = None
    ) -> None:
        """Make ``dataset_id`` show a new revision (a changed dataset) from now on."""
        self.app.repos.set_revision(dataset_id, sha, last_modified)

    @property
    def pushed(self) -> PushedRepos:
        """Dataset repos pushed to this emulator (``huggingface_hub`` uploads)."""
        return self.app.uploads.repos

    def stop(self) -> None:
        """Stop serving (held requests are released)."""
        self.app.in_flight.release()
        super().stop()


__all__ = ["MAX_PAGE", "MAX_ROWS_LENGTH", "ErrorAnswer", "HubEmulator", "HubOptions"]
