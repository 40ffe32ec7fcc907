"""An offline Hugging Face Hub and Dataset Viewer, served from a snapshot folder.

One HTTP server answers both the Hub API (``HF_ENDPOINT``) and the Dataset Viewer API, with the
paths, field names, headers and error answers the real services use and the installed
``huggingface_hub`` client reads:

- ``GET /api/datasets`` (``HfApi.list_datasets``): sort, direction, limit, search, filter,
  author, gated, full, expand, and ``Link: <...cursor=...>; rel="next"`` pagination;
- ``GET /api/datasets/{id}[/revision/{rev}]`` (``HfApi.dataset_info``);
- ``GET|HEAD /datasets/{id}/resolve/{rev}/{file}`` (``hf_hub_download``, ``DatasetCard.load``)
  with ``ETag``, ``X-Repo-Commit``, ``Content-Length``;
- ``GET /is-valid``, ``/splits``, ``/info``, ``/first-rows``, ``/rows`` (the viewer).

Knobs: a simulated now (a dataset exists from its ``created_at``; before its ``last_modified`` it
shows its first revision), latency, seeded 429 (``Retry-After``) and 5xx answers, gated datasets
(401), datasets whose viewer is not ready. Errors carry the real status, ``X-Error-Code`` and a
JSON ``{"error": ...}`` body; no request can crash the server.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import itertools
import json
import math
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from dynosaur.emulators._server import (
    BackgroundServer,
    Dice,
    RequestLog,
    ServedEmulator,
    call_safely,
    check_rate,
    json_response,
    send_response,
)
from dynosaur.emulators.snapshot import (
    DatasetEntry,
    Revision,
    Snapshot,
    format_time,
    git_blob_sha,
    parse_time,
)

# Largest page the real Hub serves, and the viewer's largest /rows page.
MAX_PAGE = 1000
MAX_ROWS_LENGTH = 100

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
_REPO_NOT_FOUND = "Repository not found"
_VIEWER_NO_ACCESS = (
    "The dataset does not exist, or is not accessible without authentication (private or "
    "gated). Please check the spelling of the dataset name or retry with authentication."
)
_VIEWER_NO_ACCESS_AUTH = (
    "The dataset does not exist, or is not accessible with the current credentials (private "
    "or gated). Please check the spelling of the dataset name or retry with other "
    "authentication credentials."
)
_VIEWER_NOT_READY = (
    "The server is busier than usual and the response is not ready yet. Please retry later."
)


class ErrorAnswer(Exception):
    """Raised by a handler to answer with an error: status, the Hub's X-Error-Code, message."""

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code

    def response(self, request_id: str) -> Response:
        headers = {"X-Request-Id": request_id, "X-Error-Message": _header_safe(self.message)}
        if self.code:
            headers["X-Error-Code"] = self.code
        return json_response({"error": self.message}, self.status, headers)


def _header_safe(text: str) -> str:
    return text.encode("ascii", "replace").decode("ascii")[:500]


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


class HubApp:
    """The ASGI app (one per emulator); its state is read by the server thread only, knobs
    are set from the tests' thread between requests."""

    def __init__(
        self,
        snapshot: Snapshot,
        *,
        latency: float,
        rate_429: float,
        rate_5xx: float,
        retry_after: float,
        gated: Iterable[str],
        viewer_not_ready: Iterable[str],
        seed: int,
        page_size: int,
    ) -> None:
        self.snapshot = snapshot
        self.latency = latency
        self.rate_429 = check_rate("rate_429", rate_429)
        self.rate_5xx = check_rate("rate_5xx", rate_5xx)
        if self.rate_429 + self.rate_5xx > 1:
            raise ValueError("rate_429 + rate_5xx must not exceed 1")
        self.retry_after = retry_after
        self.gated = set(gated)
        self.viewer_not_ready = set(viewer_not_ready)
        self.page_size = max(1, min(page_size, MAX_PAGE))
        self.dice = Dice(seed)
        self.log = RequestLog()
        self.now_override: datetime | None = None
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._routes = {
            "/api/datasets": self.list_datasets,
            "/is-valid": self.is_valid,
            "/splits": self.splits,
            "/info": self.info,
            "/first-rows": self.first_rows,
            "/rows": self.rows,
            "/healthcheck": self.healthcheck,
        }

    # --- plumbing ----------------------------------------------------------------------------

    def now(self) -> datetime:
        """The simulated now, or the real one."""
        return self.now_override if self.now_override is not None else datetime.now(UTC)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        started = time.time()
        request_id = f"Root=1-{next(self._ids):08x}"
        response = await self._answer(request, request_id)
        status = await send_response(response, scope, receive, send)
        self.log.append(
            {
                "time": started,
                "method": request.method,
                "path": request.url.path,
                "query": dict(request.query_params),
                "status": status or response.status_code,
            }
        )

    async def _answer(self, request: Request, request_id: str) -> Response:
        if self.latency > 0:
            await asyncio.sleep(self.latency)
        if not (self.rate_429 or self.rate_5xx):
            return await call_safely(
                self._route, request, self._internal_error(request_id), (ErrorAnswer,)
            )
        rng, _ = self.dice.roll(f"{request.method} {request.url.path}?{request.url.query}")
        draw = rng.random()
        if draw < self.rate_429:
            seconds = max(0, math.ceil(self.retry_after))
            return json_response(
                {"error": "You have exceeded our hourly quotas for action: api. Retry later."},
                429,
                {"Retry-After": str(seconds), "X-Request-Id": request_id},
            )
        if draw < self.rate_429 + self.rate_5xx:
            return json_response(
                {"error": "Internal Error - We're working hard to fix this as soon as possible!"},
                rng.choice((500, 502, 503)),
                {"X-Request-Id": request_id},
            )
        return await call_safely(
            self._route, request, self._internal_error(request_id), (ErrorAnswer,)
        )

    def _internal_error(self, request_id: str) -> Callable[[Exception], Response]:
        def error(exc: Exception) -> Response:
            if isinstance(exc, ErrorAnswer):
                return exc.response(request_id)
            return ErrorAnswer(500, "Internal Error", "UnexpectedApiError").response(request_id)

        return error

    async def _route(self, request: Request) -> Response:
        path = request.url.path
        if request.method not in ("GET", "HEAD"):
            raise ErrorAnswer(405, f"Method {request.method} is not allowed on this emulator")
        handler = self._routes.get(path.rstrip("/") or "/")
        if handler is not None:
            return await handler(request)
        if path.startswith("/api/datasets/"):
            return await self.dataset_info(request, path[len("/api/datasets/") :])
        if path.startswith("/datasets/") and "/resolve/" in path:
            return await self.resolve(request, path[len("/datasets/") :])
        raise ErrorAnswer(404, _NOT_FOUND_PAGE)

    def _entry(self, dataset_id: str, request: Request) -> DatasetEntry:
        """An existing dataset, or the Hub's answer for a missing one (401 anonymous, 404 auth)."""
        entry = self.snapshot.entries.get(dataset_id)
        if entry is None or not entry.exists_at(self.now()):
            status = 404 if "authorization" in request.headers else 401
            raise ErrorAnswer(status, _REPO_NOT_FOUND, "RepoNotFound")
        return entry

    def _gated(self, entry: DatasetEntry) -> str | None:
        if entry.gated:
            return entry.gated
        return "manual" if entry.id in self.gated else None

    # --- Hub API -----------------------------------------------------------------------------

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
                out["gated"] = self._gated(entry) or False
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
        params = request.query_params
        now = self.now()
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
            if gated is not None and bool(self._gated(entry)) != gated:
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

    async def dataset_info(self, request: Request, rest: str) -> Response:
        dataset_id, sep, revision = rest.partition("/revision/")
        dataset_id = dataset_id.strip("/")
        if not dataset_id or dataset_id.count("/") > 1:
            raise ErrorAnswer(404, _NOT_FOUND_PAGE)
        entry = self._entry(dataset_id, request)
        shown = self._revision(entry, revision if sep else "main")
        expand = request.query_params.getlist("expand")
        unknown = [e for e in expand if e not in _EXPANDABLE]
        if unknown:
            raise ErrorAnswer(400, f'"expand" contains unknown properties: {", ".join(unknown)}')
        blobs = bool(_flag(request.query_params.get("blobs")))
        fields = expand or sorted(_EXPANDABLE - {"resourceGroup", "mainSize"})
        return json_response(self._item(entry, shown, fields, blobs))

    def _revision(self, entry: DatasetEntry, revision: str) -> Revision:
        now = self.now()
        current = entry.revision_at(now)
        if revision in ("main", current.sha):
            return current
        if revision in entry.known_shas(now):
            dated = entry.created_at if revision == entry.initial_sha else current.last_modified
            return Revision(revision, dated)
        raise ErrorAnswer(404, f"Invalid rev id: {revision}", "RevisionNotFound")

    async def resolve(self, request: Request, rest: str) -> Response:
        dataset_id, _, tail = rest.partition("/resolve/")
        revision, _, filename = tail.partition("/")
        if not dataset_id or dataset_id.count("/") > 1 or not revision or not filename:
            raise ErrorAnswer(404, _NOT_FOUND_PAGE)
        entry = self._entry(dataset_id, request)
        if self._gated(entry):
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
        shown = self._revision(entry, revision)
        content = self.snapshot.file_bytes(entry.id, filename)
        if content is None:
            error = ErrorAnswer(404, "Entry not found", "EntryNotFound")
            response = error.response("")
            response.headers["X-Repo-Commit"] = shown.sha
            return response
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

    # --- Dataset Viewer ----------------------------------------------------------------------

    def _viewer_entry(self, request: Request) -> DatasetEntry:
        dataset_id = request.query_params.get("dataset")
        if not dataset_id:
            raise ErrorAnswer(422, "Parameter 'dataset' is required", "MissingRequiredParameter")
        entry = self.snapshot.entries.get(dataset_id)
        now = self.now()
        authenticated = "authorization" in request.headers
        if entry is None or not entry.exists_at(now) or self._gated(entry):
            if authenticated:
                raise ErrorAnswer(404, _VIEWER_NO_ACCESS_AUTH, "ExternalAuthenticatedError")
            raise ErrorAnswer(401, _VIEWER_NO_ACCESS, "ExternalUnauthenticatedError")
        if entry.id in self.viewer_not_ready or not entry.viewer_ready_at(now):
            raise ErrorAnswer(500, _VIEWER_NOT_READY, "ResponseNotReady")
        return entry

    def _config_split(
        self, request: Request, entry: DatasetEntry, need_split: bool
    ) -> tuple[str, str]:
        config = request.query_params.get("config")
        split = request.query_params.get("split")
        if not config or (need_split and not split):
            raise ErrorAnswer(
                422,
                "Parameters 'config' and 'split' are required"
                if need_split
                else "Parameter 'config' is required",
                "MissingRequiredParameter",
            )
        if config not in self.snapshot.config_names(entry.id):
            raise ErrorAnswer(404, "Not found.", "ResponseNotFound")
        if need_split and split not in self.snapshot.split_names(entry.id, config):
            raise ErrorAnswer(404, "Not found.", "ResponseNotFound")
        return config, split or ""

    async def healthcheck(self, request: Request) -> Response:
        return Response("ok", media_type="text/plain")

    async def is_valid(self, request: Request) -> Response:
        entry = self._viewer_entry(request)
        has_rows = any(
            self.snapshot.rows(entry.id, c, s)
            for c in self.snapshot.config_names(entry.id)
            for s in self.snapshot.split_names(entry.id, c)
        )
        return json_response(
            {
                "preview": has_rows,
                "viewer": has_rows,
                "search": has_rows,
                "filter": has_rows,
                "statistics": has_rows,
            }
        )

    async def splits(self, request: Request) -> Response:
        entry = self._viewer_entry(request)
        wanted = request.query_params.get("config")
        configs = self.snapshot.config_names(entry.id)
        if wanted is not None:
            if wanted not in configs:
                raise ErrorAnswer(404, "Not found.", "ResponseNotFound")
            configs = [wanted]
        found: list[dict[str, Any]] = []
        failed: list[dict[str, Any]] = []
        for config in configs:
            names = self.snapshot.split_names(entry.id, config)
            if not names:
                failed.append({"kind": "config-split-names", "dataset": entry.id, "config": config})
            found.extend({"dataset": entry.id, "config": config, "split": s} for s in names)
        return json_response({"splits": found, "pending": [], "failed": failed})

    def _info_of(self, entry: DatasetEntry, config: str) -> dict[str, Any] | None:
        features = self.snapshot.features(entry.id, config)
        if features is None:
            return None
        info = dict(self.snapshot.infos(entry.id).get(config) or {})
        info.pop("download_checksums", None)
        info.setdefault("builder_name", entry.id.split("/")[-1])
        info.setdefault("config_name", config)
        info["features"] = features
        if "splits" not in info:
            info["splits"] = {
                s: {"name": s, "num_examples": len(self.snapshot.rows(entry.id, config, s) or [])}
                for s in self.snapshot.split_names(entry.id, config)
            }
        return info

    async def info(self, request: Request) -> Response:
        entry = self._viewer_entry(request)
        if request.query_params.get("config") is None:
            infos: dict[str, Any] = {}
            failed = []
            for config in self.snapshot.config_names(entry.id):
                info = self._info_of(entry, config)
                if info is None:
                    failed.append({"kind": "config-info", "dataset": entry.id, "config": config})
                else:
                    infos[config] = info
            return json_response(
                {"dataset_info": infos, "pending": [], "failed": failed, "partial": False}
            )
        config, _ = self._config_split(request, entry, need_split=False)
        info = self._info_of(entry, config)
        if info is None:
            raise self._rows_error(entry, config)
        return json_response({"dataset_info": info, "partial": False})

    def _rows_error(self, entry: DatasetEntry, config: str) -> ErrorAnswer:
        config_entry = self.snapshot.config_entry(entry.id, config)
        cause = (config_entry.reason if config_entry else None) or "no rows"
        return ErrorAnswer(
            500,
            f"Cannot load the dataset split (in streaming mode) to extract the first rows: {cause}",
            "StreamingRowsError",
        )

    def _rows_and_features(
        self, entry: DatasetEntry, config: str, split: str
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        rows = self.snapshot.rows(entry.id, config, split)
        features = self.snapshot.features(entry.id, config)
        if rows is None or features is None:
            raise self._rows_error(entry, config)
        listed = [
            {"feature_idx": i, "name": name, "type": ftype}
            for i, (name, ftype) in enumerate(features.items())
        ]
        return rows, listed

    async def first_rows(self, request: Request) -> Response:
        entry = self._viewer_entry(request)
        config, split = self._config_split(request, entry, need_split=True)
        rows, features = self._rows_and_features(entry, config, split)
        return json_response(
            {
                "dataset": entry.id,
                "config": config,
                "split": split,
                "features": features,
                "rows": [
                    {"row_idx": i, "row": row, "truncated_cells": []}
                    for i, row in enumerate(rows[:MAX_ROWS_LENGTH])
                ],
                "truncated": False,
            }
        )

    async def rows(self, request: Request) -> Response:
        entry = self._viewer_entry(request)
        config, split = self._config_split(request, entry, need_split=True)
        offset = _viewer_int(request, "offset", 0)
        length = _viewer_int(request, "length", MAX_ROWS_LENGTH)
        if offset < 0:
            raise ErrorAnswer(422, "Parameter 'offset' must be positive", "InvalidParameter")
        if length < 0:
            raise ErrorAnswer(422, "Parameter 'length' must be positive", "InvalidParameter")
        if length > MAX_ROWS_LENGTH:
            raise ErrorAnswer(
                422,
                f"Parameter 'length' must not be greater than {MAX_ROWS_LENGTH}",
                "InvalidParameter",
            )
        rows, features = self._rows_and_features(entry, config, split)
        return json_response(
            {
                "features": features,
                "rows": [
                    {"row_idx": offset + i, "row": row, "truncated_cells": []}
                    for i, row in enumerate(rows[offset : offset + length])
                ],
                "num_rows_total": len(rows),
                "num_rows_per_page": MAX_ROWS_LENGTH,
                "partial": False,
            }
        )


def _viewer_int(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ErrorAnswer(
            422, f"Parameter '{name}' must be an integer", "InvalidParameter"
        ) from None


class HubEmulator(ServedEmulator):
    """The Hub emulator as a context manager: a real HTTP server on 127.0.0.1.

    >>> with HubEmulator(now=datetime(2024, 3, 2, tzinfo=UTC)) as hub:
    ...     HfApi(endpoint=hub.url).list_datasets(sort="created_at", limit=5)
    """

    def __init__(
        self,
        snapshot: Path | None = None,
        now: datetime | None = None,
        latency: float = 0.0,
        rate_429: float = 0.0,
        rate_5xx: float = 0.0,
        retry_after: float = 1.0,
        gated: Iterable[str] = (),
        viewer_not_ready: Iterable[str] = (),
        seed: int = 0,
        *,
        page_size: int = MAX_PAGE,
        port: int = 0,
        host: str = "127.0.0.1",
    ) -> None:
        self.snapshot = Snapshot(snapshot)
        self.app = HubApp(
            self.snapshot,
            latency=latency,
            rate_429=rate_429,
            rate_5xx=rate_5xx,
            retry_after=retry_after,
            gated=gated,
            viewer_not_ready=viewer_not_ready,
            seed=seed,
            page_size=page_size,
        )
        self.now = now
        self._server = BackgroundServer(self.app, host=host, port=port)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``: the Hub endpoint and the Dataset Viewer base URL."""
        return self._server.origin

    @property
    def now(self) -> datetime | None:
        """The simulated now (None = the real clock); settable between calls."""
        return self.app.now_override

    @now.setter
    def now(self, value: datetime | str | None) -> None:
        self.app.now_override = parse_time(value) if value is not None else None

    @property
    def request_log(self) -> list[dict[str, Any]]:
        """One dict per answered request: time, method, path, query, status."""
        return self.app.log.entries()

    @property
    def status_counts(self) -> dict[int, int]:
        """Requests answered per HTTP status since the start."""
        return dict(self.app.log.statuses())

    def set_revision(
        self, dataset_id: str, sha: str, last_modified: datetime | None = None
    ) -> None:
        """Make ``dataset_id`` show a new revision (a changed dataset) from now on."""
        entry = self.snapshot.entries.get(dataset_id)
        if entry is None:
            raise KeyError(f"{dataset_id} is not in the snapshot")
        moment = parse_time(last_modified) if last_modified is not None else self.app.now()
        with self.app._lock:
            entry.past_shas.add(entry.revision_at(self.app.now()).sha)
            entry.override = Revision(sha, moment)
