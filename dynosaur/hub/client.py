"""The Hub as a source: one client for the Hub API and the Dataset Viewer.

Listing and dataset metadata go through ``huggingface_hub.HfApi`` (run in worker threads, it is
synchronous); the card and the Dataset Viewer go through ``httpx.AsyncClient`` (one per request
slot, sharing one TLS context). Both depend on settings' base URLs only, so tests point them at the
Hub emulator, never at fakes.

Every request holds one of ``hub_concurrency`` slots while in flight (not while waiting to retry),
and a request to a Hub bucket (``api``, ``resolvers``) first takes a place in that bucket's quota
window (:class:`WindowLimiter`), aligned on the windows the Hub reports in its ``RateLimit``
headers: the client paces itself to the quota instead of running into it. Retries follow the one
policy of :mod:`dynosaur.retry`: a 429 waits for the window's reset (``RateLimit``, or
``Retry-After``); a transient 5xx, a timeout or a dropped connection backs off exponentially.

The viewer's error codes are classified (:func:`classify_answer`): permanent states of the dataset
(viewer disabled, a script dataset, blocked, too large...) fail at once with a reason per family
(collect skips the dataset); "not ready yet" ones fail at once as transient (collect defers the
dataset to a later run); unexpected server errors are retried. Error texts are scrubbed of secrets
(:func:`dynosaur.redact.redact`) before they become messages.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import math
import ssl
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Literal, TypeVar
from urllib.parse import urlencode

import httpx
import msgspec
from huggingface_hub import HfApi, hf_hub_url
from huggingface_hub.errors import HfHubHTTPError, HFValidationError
from huggingface_hub.hf_api import ExpandDatasetProperty_T
from huggingface_hub.utils import validate_repo_id

from dynosaur import __version__
from dynosaur.errors import HubRequestError
from dynosaur.hub.card import declared_licenses
from dynosaur.reasons import Reason
from dynosaur.redact import redact
from dynosaur.retry import Failure, RetryPolicy, call_with_retries, rate_limit, server_wait_seconds
from dynosaur.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")

# Viewer error codes that mean "not computed yet": the dataset is deferred, not failed.
VIEWER_NOT_READY_CODES = frozenset(
    {
        "ResponseNotReady",
        "ResponseNotReadyError",
        "ResponseAlreadyComputedError",
        "PreviousStepStillProcessingError",
    }
)
# Error codes of a server-side failure that another attempt may not meet: retried.
RETRYABLE_CODES = frozenset(
    {
        "UnexpectedError",
        "UnexpectedApiError",
        "RetryableConfigNamesError",
        "ExternalServerError",
        "HfHubError",
        "DatasetInfoHubRequestError",
        "DiskError",
        "FileSystemError",
        "CreateCommitError",
        "LockedDatasetTimeoutError",
    }
)
# The viewer's permanent error codes (its answer stays the same for this revision), by family.
VIEWER_FAMILIES: dict[str, Reason] = {
    "NotSupportedDisabledViewerError": Reason.VIEWER_DISABLED,
    "DisabledViewerError": Reason.VIEWER_DISABLED,
    "NotSupportedDisabledRepositoryError": Reason.VIEWER_DISABLED,
    "NotSupportedPrivateRepositoryError": Reason.PRIVATE,
    "DatasetWithScriptNotSupportedError": Reason.VIEWER_SCRIPT,
    "DatasetScriptError": Reason.VIEWER_SCRIPT,
    "DatasetModuleNotInstalledError": Reason.VIEWER_SCRIPT,
    "DatasetManualDownloadError": Reason.VIEWER_SCRIPT,
    "DatasetInBlockListError": Reason.VIEWER_BLOCKED,
    "NotSupportedTagNFAAError": Reason.VIEWER_BLOCKED,
    "DatasetWithTooManyConfigsError": Reason.VIEWER_TOO_LARGE,
    "DatasetWithTooManySplitsError": Reason.VIEWER_TOO_LARGE,
    "DatasetWithTooManyParquetFilesError": Reason.VIEWER_TOO_LARGE,
    "TooBigContentError": Reason.VIEWER_TOO_LARGE,
    "TooManyColumnsError": Reason.VIEWER_TOO_LARGE,
    "TooLongColumnNameError": Reason.VIEWER_TOO_LARGE,
    "NoSupportedFeaturesError": Reason.VIEWER_UNSUPPORTED_FEATURES,
    "JobManagerCrashedError": Reason.VIEWER_DATASET_ERROR,
    "JobManagerExceededMaximumDurationError": Reason.VIEWER_DATASET_ERROR,
    "EmptyDatasetError": Reason.VIEWER_DATASET_ERROR,
    "DatasetGenerationError": Reason.VIEWER_DATASET_ERROR,
    "DatasetGenerationCastError": Reason.VIEWER_DATASET_ERROR,
    "DataFilesNotFoundError": Reason.VIEWER_DATASET_ERROR,
    "FileFormatMismatchBetweenSplitsError": Reason.VIEWER_DATASET_ERROR,
    "ConfigNamesError": Reason.VIEWER_DATASET_ERROR,
    "SplitsNamesError": Reason.VIEWER_DATASET_ERROR,
    "SplitNamesFromStreamingError": Reason.VIEWER_DATASET_ERROR,
    "FeaturesError": Reason.VIEWER_DATASET_ERROR,
    "InfoError": Reason.VIEWER_DATASET_ERROR,
    "StreamingRowsError": Reason.VIEWER_DATASET_ERROR,
    "NormalRowsError": Reason.VIEWER_DATASET_ERROR,
    "RowsPostProcessingError": Reason.VIEWER_DATASET_ERROR,
}
# Reasons of the viewer's permanent answers: collect skips (a dataset or a config) with them.
VIEWER_PERMANENT_REASONS = frozenset(
    {
        Reason.VIEWER_DISABLED,
        Reason.VIEWER_SCRIPT,
        Reason.VIEWER_BLOCKED,
        Reason.VIEWER_TOO_LARGE,
        Reason.VIEWER_UNSUPPORTED_FEATURES,
        Reason.VIEWER_NOT_SUPPORTED,
        Reason.VIEWER_DATASET_ERROR,
    }
)
# Hub error codes whose answer will not change by retrying.
_PERMANENT_CODES = frozenset(
    {"RepoNotFound", "RevisionNotFound", "EntryNotFound", "GatedRepo", "DisabledRepo"}
)
# The Hub's documented quotas per 5-minute window: (anonymous, with a token).
DEFAULT_QUOTAS = {"api": (500, 1000), "resolvers": (3000, 5000)}
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
    licenses: tuple[str, ...] = ()  # as the card's metadata declares them (none: no card data)


class ViewerAnswer(dict[str, Any]):
    """A Dataset Viewer answer (its JSON object) and ``revision``: the dataset revision it was
    computed for (the ``X-Revision`` header; None when absent)."""

    revision: str | None = None


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
        licenses=declared_licenses(_card_meta(getattr(info, "card_data", None))),
    )


def _card_meta(card_data: object) -> dict[str, Any]:
    """The card metadata of a dataset info (``DatasetCardData``) as a plain mapping."""
    to_dict = getattr(card_data, "to_dict", None)
    meta = to_dict() if callable(to_dict) else card_data
    return meta if isinstance(meta, dict) else {}


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def classify_answer(
    what: str,
    dataset_id: str | None,
    status: int,
    code: str | None,
    headers: Mapping[str, str],
    text: str,
) -> HubRequestError | Failure:
    """An error answer as a final error (:class:`HubRequestError`: permanent, or transient but
    not worth retrying now) or a :class:`~dynosaur.retry.Failure` to retry. The server's text is
    scrubbed of secrets before it becomes the message."""
    detail = " ".join(text.split())[:300]
    message = redact(
        f"{what}: HTTP {status}" + (f" {code}" if code else "") + (f": {detail}" if detail else "")
    )

    def error(reason: Reason, transient: bool = False) -> HubRequestError:
        return HubRequestError(
            message,
            reason=reason,
            dataset_id=dataset_id,
            status=status,
            code=code,
            transient=transient,
        )

    def retry(reason: Reason) -> Failure:
        wait = server_wait_seconds(headers)
        return Failure(
            message, reason=reason, transient=True, wait_s=wait, status=status, code=code
        )

    if status == 429:
        return retry(Reason.RATE_LIMITED)
    if code in VIEWER_NOT_READY_CODES:
        return error(Reason.VIEWER_NOT_READY, transient=True)
    if code in VIEWER_FAMILIES:
        return error(VIEWER_FAMILIES[code])
    if code in RETRYABLE_CODES or status in (502, 503, 504) or (status >= 500 and code is None):
        return retry(Reason.HUB_ERROR)
    # The Hub answers 401 for a missing repo to anonymous callers: the code tells them apart.
    if code in ("RepoNotFound", "RevisionNotFound"):
        return error(Reason.NOT_FOUND)
    if code == "GatedRepo" or status in (401, 403):
        return error(Reason.GATED)
    if status == 404:
        return error(Reason.NOT_FOUND)
    if status == 501:
        return error(Reason.VIEWER_NOT_SUPPORTED)
    if status >= 500 and code not in _PERMANENT_CODES:
        return error(Reason.VIEWER_DATASET_ERROR)  # another error the viewer cached
    return error(Reason.HUB_ERROR)


def _transport_failure(what: str, exc: BaseException) -> Failure | None:
    """A timeout or a dropped connection: retried; None for anything else (a bug: raised)."""
    if isinstance(exc, httpx.TransportError | OSError):
        return Failure(
            redact(f"{what}: {type(exc).__name__}: {exc}"), reason=Reason.HUB_ERROR, transient=True
        )
    return None


def hub_quotas(settings: Settings) -> dict[str, int]:
    """Requests per window the client allows itself per Hub bucket (0: no pacing)."""
    token = 1 if settings.hub_token else 0
    configured = {"api": settings.hub_quota_api, "resolvers": settings.hub_quota_resolvers}
    return {
        bucket: DEFAULT_QUOTAS[bucket][token] if value is None else value
        for bucket, value in configured.items()
    }


class WindowLimiter:
    """Paces one bucket's requests to a fixed-window quota, the windows aligned on the server's.

    :meth:`acquire` takes a place in the current window, or waits for the next one. Each answer's
    ``RateLimit`` headers (:meth:`observe`) correct the estimate: the quota and window from
    ``RateLimit-Policy``, the requests already counted (``q - r``, when more than ours: another
    process shares the quota), and the window's end (``now + t``: ``t`` is rounded up, so the
    earliest such end seen in a window is the closest to the truth, never before it). Requests
    still in flight when a window ends are counted in the next one as well (the server may).
    """

    def __init__(
        self,
        bucket: str,
        quota: int,
        window_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bucket = bucket
        self.quota = quota
        self.window_s = float(window_s)
        self.clock = clock
        self.used = 0
        self.in_flight = 0
        self.ends_at: float | None = None
        self.aligned = False  # whether the window's end came from the server
        self.waits = 0  # times a request waited for the next window
        self.waited_s = 0.0

    def _roll(self, now: float) -> None:
        if self.ends_at is None:
            self.ends_at, self.used = now + self.window_s, self.in_flight
        elif now >= self.ends_at:
            passed = math.floor((now - self.ends_at) / self.window_s) + 1
            self.ends_at += passed * self.window_s
            self.used = self.in_flight

    async def acquire(self) -> None:
        """Wait for a place in the quota, then take it (call :meth:`release` once answered)."""
        while True:
            now = self.clock()
            self._roll(now)
            assert self.ends_at is not None
            if self.used < self.quota:
                self.used += 1
                self.in_flight += 1
                return
            wait = self.ends_at - now
            self.waits += 1
            self.waited_s += wait
            await asyncio.sleep(wait)

    def release(self) -> None:
        """The request taken by :meth:`acquire` was answered (or failed)."""
        self.in_flight = max(0, self.in_flight - 1)

    def observe(self, headers: Mapping[str, str]) -> None:
        """Correct the window from an answer's ``RateLimit`` headers (if it has them)."""
        limit = rate_limit(headers)
        if limit is None or limit.bucket != self.bucket:
            return
        now = self.clock()
        if limit.quota:
            self.quota = limit.quota
        if limit.window_s:
            self.window_s = float(limit.window_s)
        self._roll(now)
        assert self.ends_at is not None
        end = now + limit.reset_s
        counted = self.quota - limit.remaining
        if not self.aligned or end > self.ends_at + self.window_s / 2:
            self.ends_at, self.aligned = end, True  # first sight, or the server is ahead of us
        elif end < self.ends_at - self.window_s / 2:
            return  # an answer about a window that is over
        else:
            self.ends_at = min(self.ends_at, end)
        self.used = max(self.used, counted)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """The TLS context every client shares (loading the CA bundle costs ~20 ms per client)."""
    return httpx.create_ssl_context()


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
        # one-connection pool per slot costs a few times less CPU than one shared pool. They
        # share one TLS context, loaded once per process.
        clients = (
            [http] * settings.hub_concurrency
            if http
            else [
                httpx.AsyncClient(
                    headers=headers,
                    timeout=httpx.Timeout(settings.hub_timeout_s),
                    limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
                    follow_redirects=True,
                    verify=_tls_context(),
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
        self.policy = RetryPolicy(
            attempts=settings.hub_max_retries + 1,
            backoff_s=settings.hub_backoff_s,
            backoff_max_s=settings.hub_backoff_max_s,
            # A 429 waits for its quota window's reset, however long the window.
            max_server_wait_s=max(330.0, settings.hub_quota_window_s * 1.1),
        )
        self.limiters = {
            bucket: WindowLimiter(bucket, quota, settings.hub_quota_window_s)
            for bucket, quota in hub_quotas(settings).items()
            if quota > 0
        }
        self.requests = 0  # requests sent, retries included
        self.busy_s = 0.0  # seconds of slot time the requests took (wall clock, summed)
        self.rate_limited = 0  # 429 answers met

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

    async def _retrying(
        self,
        what: str,
        dataset_id: str | None,
        bucket: str | None,
        attempt: Callable[[httpx.AsyncClient], Awaitable[T]],
    ) -> T:
        """Run ``attempt`` in a request slot (with that slot's HTTP client) after taking a place
        in ``bucket``'s quota, retrying transient failures by the one retry policy; neither the
        slot nor the quota place is held while waiting to retry. A transient failure that
        outlasts the retries is raised as a transient :class:`HubRequestError`."""
        limiter = self.limiters.get(bucket) if bucket else None

        async def once() -> T:
            if limiter is not None:
                await limiter.acquire()
            http = await self._free.get()
            self.requests += 1
            started = time.perf_counter()
            try:
                return await attempt(http)
            finally:
                self.busy_s += time.perf_counter() - started
                self._free.put_nowait(http)
                if limiter is not None:
                    limiter.release()

        def on_retry(failure: Failure, wait: float) -> None:
            if failure.reason == Reason.RATE_LIMITED:
                self.rate_limited += 1
            log.info("retrying in %.2fs: %s", wait, failure)

        try:
            return await call_with_retries(
                once,
                self.policy,
                classify=lambda exc: _transport_failure(what, exc),
                on_retry=on_retry,
            )
        except Failure as failure:
            if failure.reason == Reason.RATE_LIMITED and failure.attempts == 1:
                self.rate_limited += 1
            raise HubRequestError(
                str(failure),
                reason=failure.reason,
                dataset_id=dataset_id,
                status=failure.status or 0,
                code=failure.code,
                transient=True,
            ) from None

    def _observe(self, bucket: str | None, headers: Mapping[str, str]) -> None:
        limiter = self.limiters.get(bucket) if bucket else None
        if limiter is not None:
            limiter.observe(headers)

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
                self._observe("api", response.headers)
                raise classify_answer(
                    what,
                    dataset_id,
                    response.status_code,
                    response.headers.get("x-error-code"),
                    response.headers,
                    exc.server_message or "",
                ) from None
            except HFValidationError as exc:
                raise HubRequestError(
                    redact(f"{what}: {exc}"), reason=Reason.NOT_FOUND, dataset_id=dataset_id
                ) from None

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
        info = _hub_dataset(await self._retrying(what, dataset_id, "api", attempt))
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
            async with http.stream("GET", url) as response:
                self._observe("resolvers", response.headers)
                if response.status_code != 200:
                    body = (await response.aread())[:2000].decode("utf-8", "replace")
                    if response.headers.get("x-error-code") == "EntryNotFound":
                        return None
                    raise classify_answer(
                        what,
                        dataset_id,
                        response.status_code,
                        response.headers.get("x-error-code"),
                        response.headers,
                        _error_text(body),
                    )
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    chunks.append(chunk)
                    size += len(chunk)
                    if size > limit:
                        return b"".join(chunks)[:limit], True
                return b"".join(chunks), False

        return await self._retrying(what, dataset_id, "resolvers", attempt)

    async def viewer(self, endpoint: str, dataset_id: str, **params: Any) -> ViewerAnswer:
        """A Dataset Viewer answer (``splits``, ``info``, ``first-rows``, ``rows``): its JSON
        object, and the revision it is for."""
        query = {"dataset": dataset_id, **{k: v for k, v in params.items() if v is not None}}
        # Encoded here once: httpx merging `params` into a URL costs more than the request.
        url = f"{self.viewer_url}/{endpoint}?{urlencode(query)}"
        what = f"viewer /{endpoint} of {dataset_id}" + "".join(
            f" {k}={v}" for k, v in params.items() if v is not None
        )

        async def attempt(http: httpx.AsyncClient) -> ViewerAnswer:
            response = await http.get(url)
            if response.status_code != 200:
                raise classify_answer(
                    what,
                    dataset_id,
                    response.status_code,
                    response.headers.get("x-error-code"),
                    response.headers,
                    _error_text(response.text[:2000]),
                )
            try:
                data = _decode(response.content)
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
            answer = ViewerAnswer(data)
            answer.revision = response.headers.get("x-revision")
            return answer

        return await self._retrying(what, dataset_id, None, attempt)


_DECODER = msgspec.json.Decoder()


def _decode(content: bytes) -> Any:
    """JSON from an answer: msgspec reads the viewer's answers (up to 100 rows each) a few times
    faster than ``json``; what it refuses (NaN, numbers beyond a double) ``json`` reads as
    before."""
    try:
        return _DECODER.decode(content)
    except msgspec.MsgspecError:
        return json.loads(content)


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
            redact(
                f"listing datasets by {sort}: HTTP {status}: {exc.server_message or ''}".strip()
            ),
            reason=reason,
            status=status,
        ) from None
    except OSError as exc:
        raise HubRequestError(
            redact(f"listing datasets by {sort}: {type(exc).__name__}: {exc}"),
            reason=Reason.HUB_ERROR,
        ) from None
