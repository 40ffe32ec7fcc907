"""The Hub as a source: one client for the Hub API and the Dataset Viewer.

Listing and dataset metadata go through ``huggingface_hub.HfApi`` (run in worker threads, it is
synchronous); the card and the Dataset Viewer go through one ``httpx.AsyncClient``. Both depend on
settings' base URLs only, so tests point them at the Hub emulator, never at fakes.

Every request holds one of ``hub_concurrency`` slots while in flight (not while waiting to
retry). A 429 is retried after its ``Retry-After``; a transient 5xx, a timeout or a dropped
connection after an exponential backoff; after ``hub_max_retries`` the request fails with
``rate_limited`` or ``hub_error``. The viewer's "not ready" answer is never retried here: the
dataset is deferred to a later run instead.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Literal, TypeVar
from urllib.parse import urlencode

import httpx
from huggingface_hub import HfApi, hf_hub_url
from huggingface_hub.errors import HfHubHTTPError, HFValidationError
from huggingface_hub.hf_api import ExpandDatasetProperty_T
from huggingface_hub.utils import validate_repo_id

from dynosaur import __version__
from dynosaur.errors import HubRequestError
from dynosaur.reasons import Reason
from dynosaur.retry import retry_after_seconds
from dynosaur.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")

# Viewer error codes that mean "not computed yet": the dataset is deferred, not failed.
VIEWER_NOT_READY_CODES = frozenset({"ResponseNotReady", "ResponseAlreadyComputedError"})
# Hub error codes whose answer will not change by retrying.
_PERMANENT_CODES = frozenset(
    {"RepoNotFound", "RevisionNotFound", "EntryNotFound", "GatedRepo", "DisabledRepo"}
)
_LISTING_FIELDS: list[ExpandDatasetProperty_T] = [
    "createdAt",
    "lastModified",
    "sha",
    "gated",
    "private",
    "disabled",
]

Sort = Literal["created_at", "last_modified"]


@dataclass(frozen=True)
class HubDataset:
    """What the Hub says about one revision of a dataset repo."""

    dataset_id: str
    sha: str
    created_at: datetime | None
    last_modified: datetime | None
    gated: bool = False
    private: bool = False
    disabled: bool = False


def hub_url(endpoint: str, dataset_id: str) -> str:
    """The dataset's page on the Hub at ``endpoint``."""
    return f"{endpoint.rstrip('/')}/datasets/{dataset_id}"


def check_dataset_id(dataset_id: str) -> str | None:
    """Why ``dataset_id`` is not a valid Hub repo id, or None when it is."""
    try:
        validate_repo_id(dataset_id)
    except HFValidationError as exc:
        return str(exc)
    return None


def _hub_dataset(info: Any) -> HubDataset:
    return HubDataset(
        dataset_id=info.id,
        sha=info.sha or "",
        created_at=_utc(info.created_at),
        last_modified=_utc(info.last_modified),
        gated=bool(info.gated),
        private=bool(info.private),
        disabled=bool(getattr(info, "disabled", False)),
    )


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class _Retry(Exception):
    """A transient failure: retry after ``wait`` seconds (None = exponential backoff)."""

    def __init__(self, error: HubRequestError, wait: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.wait = wait


def _classify(
    what: str, dataset_id: str | None, status: int, code: str | None, headers: Any, text: str
) -> HubRequestError | _Retry:
    """Turn an error answer into a final error or a retry."""
    detail = " ".join(text.split())[:300]
    message = (
        f"{what}: HTTP {status}" + (f" {code}" if code else "") + (f": {detail}" if detail else "")
    )

    def error(reason: Reason) -> HubRequestError:
        return HubRequestError(
            message, reason=reason, dataset_id=dataset_id, status=status, code=code
        )

    if status == 429:
        return _Retry(error(Reason.RATE_LIMITED), retry_after_seconds(headers.get("retry-after")))
    if code in VIEWER_NOT_READY_CODES:
        return error(Reason.VIEWER_NOT_READY)
    # The Hub answers 401 for a missing repo to anonymous callers: the code tells them apart.
    if code in ("RepoNotFound", "RevisionNotFound"):
        return error(Reason.NOT_FOUND)
    if code == "GatedRepo" or status in (401, 403):
        return error(Reason.GATED)
    if status == 404:
        return error(Reason.NOT_FOUND)
    if status >= 500 and (status != 500 or code is None) and code not in _PERMANENT_CODES:
        return _Retry(error(Reason.HUB_ERROR), retry_after_seconds(headers.get("retry-after")))
    return error(Reason.HUB_ERROR)


def make_api(settings: Settings) -> HfApi:
    """An ``HfApi`` for the configured endpoint and token."""
    token = settings.hub_token.get_secret_value() if settings.hub_token else None
    # token=False: never send a token saved on this machine when none is configured.
    return HfApi(
        endpoint=settings.hub_endpoint,
        token=token or False,
        library_name="dynosaur",
        library_version=__version__,
    )


class HubClient:
    """Async client of the Hub API and the Dataset Viewer; use as ``async with``.

    ``http`` (an ``httpx.AsyncClient``, then shared by every slot) and ``api`` (an ``HfApi``)
    may be given to share or instrument them; by default both are built from settings.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        http: httpx.AsyncClient | None = None,
        api: HfApi | None = None,
    ) -> None:
        self.settings = settings
        token = settings.hub_token.get_secret_value() if settings.hub_token else None
        self.api = api or make_api(settings)
        headers = {"User-Agent": f"dynosaur/{__version__}"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._own_http = http is None
        # One connection per request slot, each in its own client: httpx re-checks every
        # pooled connection (a socket poll each) whenever a request starts or ends, so a
        # one-connection pool per slot costs a few times less CPU than one shared pool.
        clients = (
            [http] * settings.hub_concurrency
            if http
            else [
                httpx.AsyncClient(
                    headers=headers,
                    timeout=httpx.Timeout(settings.hub_timeout_s),
                    limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
                    follow_redirects=True,
                )
                for _ in range(settings.hub_concurrency)
            ]
        )
        self._clients = clients
        self._free: asyncio.Queue[httpx.AsyncClient] = asyncio.Queue()
        for client in clients:
            self._free.put_nowait(client)
        self.viewer_url = settings.viewer_url
        self._threads = ThreadPoolExecutor(
            max_workers=settings.hub_concurrency, thread_name_prefix="dynosaur-hub"
        )
        self.requests = 0  # requests sent, retries included
        self.busy_s = 0.0  # seconds of slot time the requests took (wall clock, summed)

    async def __aenter__(self) -> HubClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client (when owned) and the worker threads."""
        if self._own_http:
            for client in self._clients:
                await client.aclose()
        self._threads.shutdown(wait=False, cancel_futures=True)

    # --- retries -----------------------------------------------------------------------------

    async def _retrying(self, attempt: Callable[[httpx.AsyncClient], Awaitable[T]]) -> T:
        """Run ``attempt`` in a request slot (with that slot's HTTP client), retrying transient
        failures; the slot is free while waiting to retry."""
        settings = self.settings
        delay = settings.hub_backoff_s
        for retry in range(settings.hub_max_retries + 1):
            http = await self._free.get()
            self.requests += 1
            started = time.perf_counter()
            try:
                return await attempt(http)
            except _Retry as exc:
                failure = exc
            finally:
                self.busy_s += time.perf_counter() - started
                self._free.put_nowait(http)
            if retry == settings.hub_max_retries:
                break
            if failure.wait is not None:
                wait = failure.wait
                if wait > settings.hub_backoff_max_s:
                    break  # the Hub asks for longer than we wait: defer to a later run
            else:
                wait = min(delay, settings.hub_backoff_max_s) * (0.5 + random.random() / 2)
                delay *= 2
            log.info("retrying in %.2fs: %s", wait, failure.error)
            await asyncio.sleep(wait)
        failure.error.transient = True
        raise failure.error

    # --- Hub API (HfApi, in threads) ---------------------------------------------------------

    def _in_thread(
        self, what: str, dataset_id: str | None, call: Callable[[], T]
    ) -> Callable[[httpx.AsyncClient], Awaitable[T]]:
        """An attempt that runs a blocking ``HfApi`` call in a worker thread and classifies
        its errors like the async requests'."""

        async def attempt(http: httpx.AsyncClient) -> T:
            del http  # HfApi has its own client; the slot still bounds concurrency
            loop = asyncio.get_running_loop()
            try:
                return await loop.run_in_executor(self._threads, call)
            except HfHubHTTPError as exc:
                response = exc.response
                found = _classify(
                    what,
                    dataset_id,
                    response.status_code,
                    response.headers.get("x-error-code"),
                    response.headers,
                    exc.server_message or "",
                )
            except HFValidationError as exc:
                raise HubRequestError(
                    f"{what}: {exc}", reason=Reason.NOT_FOUND, dataset_id=dataset_id
                ) from None
            except OSError as exc:  # httpx2 transport errors are OSErrors too
                found = _Retry(
                    HubRequestError(
                        f"{what}: {type(exc).__name__}: {exc}",
                        reason=Reason.HUB_ERROR,
                        dataset_id=dataset_id,
                    )
                )
            raise found

        return attempt

    async def dataset_info(self, dataset_id: str, revision: str | None = None) -> HubDataset:
        """The Hub's metadata of a dataset (at ``revision``, default the latest)."""
        what = f"dataset info of {dataset_id}"
        attempt = self._in_thread(
            what,
            dataset_id,
            lambda: self.api.dataset_info(
                dataset_id, revision=revision, timeout=self.settings.hub_timeout_s
            ),
        )
        info = _hub_dataset(await self._retrying(attempt))
        if not info.sha:
            info = HubDataset(**{**info.__dict__, "sha": revision or ""})
        return info

    # --- card and viewer (httpx) -------------------------------------------------------------

    async def card(
        self, dataset_id: str, revision: str, filename: str = "README.md"
    ) -> tuple[bytes, bool] | None:
        """(README.md bytes, whether they were cut at ``max_card_bytes``), None without a card
        (``filename``: another small repo file, e.g. ``dataset_infos.json``).

        Streamed and cut, not downloaded whole: a card of megabytes costs at most the limit.
        """
        url = hf_hub_url(
            dataset_id,
            filename,
            repo_type="dataset",
            revision=revision,
            endpoint=self.settings.hub_endpoint,
        )
        limit = self.settings.max_card_bytes
        what = f"{filename} of {dataset_id}"

        async def attempt(http: httpx.AsyncClient) -> tuple[bytes, bool] | None:
            try:
                async with http.stream("GET", url) as response:
                    if response.status_code != 200:
                        body = (await response.aread())[:2000].decode("utf-8", "replace")
                        if response.headers.get("x-error-code") == "EntryNotFound":
                            return None
                        found = _classify(
                            what,
                            dataset_id,
                            response.status_code,
                            response.headers.get("x-error-code"),
                            response.headers,
                            _error_text(body),
                        )
                        raise found
                    chunks: list[bytes] = []
                    size = 0
                    async for chunk in response.aiter_bytes():
                        chunks.append(chunk)
                        size += len(chunk)
                        if size > limit:
                            return b"".join(chunks)[:limit], True
                    return b"".join(chunks), False
            except httpx.TransportError as exc:
                raise _Retry(
                    HubRequestError(
                        f"{what}: {type(exc).__name__}",
                        reason=Reason.HUB_ERROR,
                        dataset_id=dataset_id,
                    )
                ) from None

        return await self._retrying(attempt)

    async def viewer(self, endpoint: str, dataset_id: str, **params: Any) -> dict[str, Any]:
        """A Dataset Viewer answer (``splits``, ``info``, ``first-rows``, ``rows``) as JSON."""
        query = {"dataset": dataset_id, **{k: v for k, v in params.items() if v is not None}}
        # Encoded here once: httpx merging `params` into a URL costs more than the request.
        url = f"{self.viewer_url}/{endpoint}?{urlencode(query)}"
        what = f"viewer /{endpoint} of {dataset_id}" + "".join(
            f" {k}={v}" for k, v in params.items() if v is not None
        )

        async def attempt(http: httpx.AsyncClient) -> dict[str, Any]:
            try:
                response = await http.get(url)
            except httpx.TransportError as exc:
                raise _Retry(
                    HubRequestError(
                        f"{what}: {type(exc).__name__}",
                        reason=Reason.HUB_ERROR,
                        dataset_id=dataset_id,
                    )
                ) from None
            if response.status_code != 200:
                raise _classify(
                    what,
                    dataset_id,
                    response.status_code,
                    response.headers.get("x-error-code"),
                    response.headers,
                    _error_text(response.text[:2000]),
                )
            try:
                data = json.loads(response.content)
            except (ValueError, RecursionError) as exc:
                raise HubRequestError(
                    f"{what}: the answer is not readable JSON ({type(exc).__name__})",
                    reason=Reason.HUB_ERROR,
                    dataset_id=dataset_id,
                    status=response.status_code,
                    code="UnreadableJSON",
                ) from None
            if not isinstance(data, dict):
                raise HubRequestError(
                    f"{what}: the answer is not a JSON object",
                    reason=Reason.HUB_ERROR,
                    dataset_id=dataset_id,
                    status=response.status_code,
                    code="UnreadableJSON",
                )
            return data

        return await self._retrying(attempt)


def _error_text(body: str) -> str:
    """The ``error`` of a JSON error body, else the body."""
    try:
        data = json.loads(body)
    except ValueError:
        return body
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        return data["error"]
    return body


def list_datasets(api: HfApi, sort: Sort) -> Iterator[HubDataset]:
    """Every dataset, newest first by ``sort`` (a lazy listing: stop iterating to stop
    requesting pages). Synchronous: the listing is one sequence of pages."""
    try:
        for info in api.list_datasets(sort=sort, expand=_LISTING_FIELDS):
            yield _hub_dataset(info)
    except HfHubHTTPError as exc:
        status = exc.response.status_code
        reason = Reason.RATE_LIMITED if status == 429 else Reason.HUB_ERROR
        raise HubRequestError(
            f"listing datasets by {sort}: HTTP {status}: {exc.server_message or ''}".strip(),
            reason=reason,
            status=status,
        ) from None
    except OSError as exc:
        raise HubRequestError(
            f"listing datasets by {sort}: {type(exc).__name__}: {exc}", reason=Reason.HUB_ERROR
        ) from None
