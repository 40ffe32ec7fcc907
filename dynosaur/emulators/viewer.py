"""The Dataset Viewer API of the Hub emulator: ``/is-valid``, ``/splits``, ``/info``,
``/first-rows``, ``/rows`` (and ``/healthcheck``), answered from the snapshot.

Answers carry the real fields (``features`` with ``feature_idx``, ``rows`` with ``row_idx`` and
``truncated_cells``, ``num_rows_total``...), so ``datasets.Features.from_dict`` reads them, and
the ``X-Revision`` header (the dataset revision the answer was computed for). Errors are the
viewer's, with its status and ``X-Error-Code`` (the dataset-viewer repository's
``libcommon/exceptions.py`` and ``libapi/exceptions.py``):

- 401/404 ``External(Un)AuthenticatedError`` for a missing, private or gated dataset, 404
  ``ResponseNotFound`` for an unknown config or split, 422 for missing or bad parameters;
- permanent states of a dataset (knob ``viewer_errors``, and any card with ``viewer: false``):
  501 ``NotSupportedDisabledViewerError``, ``DatasetWithScriptNotSupportedError``,
  ``DatasetInBlockListError``, ``DatasetWithTooManyConfigsError``, ``NotSupportedTagNFAAError``,
  ``NoSupportedFeaturesError``..., 500 ``EmptyDatasetError``, ``DatasetGenerationError``...
  (:data:`ERROR_STATUS`);
- transient ones: 500 ``ResponseNotReady`` while the dataset is not processed yet, and (knob
  ``viewer_transient``) ``PreviousStepStillProcessingError``, ``UnexpectedError`` or a
  plain-text 500;
- partial answers: configs still ``pending`` or ``failed`` in ``/splits`` (knobs), cells cut in
  ``/first-rows`` and named in ``truncated_cells`` (knob ``truncate_cells``), an older revision
  in ``X-Revision`` (knob ``viewer_stale``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from dynosaur.emulators._server import json_response
from dynosaur.emulators.repos import ErrorAnswer, Repos, authenticated
from dynosaur.emulators.snapshot import DatasetEntry

# The viewer's largest /rows page (and the rows /first-rows shows).
MAX_ROWS_LENGTH = 100

_NO_ACCESS = (
    "The dataset does not exist, or is not accessible without authentication (private or "
    "gated). Please check the spelling of the dataset name or retry with authentication."
)
_NO_ACCESS_AUTH = (
    "The dataset does not exist, or is not accessible with the current credentials (private "
    "or gated). Please check the spelling of the dataset name or retry with other "
    "authentication credentials."
)
_NOT_READY = (
    "The server is busier than usual and the response is not ready yet. Please retry later."
)

T = TypeVar("T")

# The HTTP status the real viewer answers each error code with (its exception classes).
ERROR_STATUS: dict[str, int] = {
    # 501: the viewer does not support the dataset
    "NotSupportedDisabledViewerError": 501,
    "NotSupportedDisabledRepositoryError": 501,
    "NotSupportedPrivateRepositoryError": 501,
    "NotSupportedRepositoryNotFoundError": 501,
    "NotSupportedTagNFAAError": 501,
    "DatasetInBlockListError": 501,
    "DatasetWithScriptNotSupportedError": 501,
    "DatasetScriptError": 501,
    "DatasetWithTooManyConfigsError": 501,
    "DatasetWithTooManySplitsError": 501,
    "DatasetWithTooManyParquetFilesError": 501,
    "NoSupportedFeaturesError": 501,
    "TooBigContentError": 501,
    "JobManagerCrashedError": 501,
    "JobManagerExceededMaximumDurationError": 501,
    "LockedDatasetTimeoutError": 501,
    # 404
    "DisabledViewerError": 404,
    "DatasetNotFoundError": 404,
    "ConfigNotFoundError": 404,
    "SplitNotFoundError": 404,
    "ResponseNotFound": 404,
    # 500: the dataset itself could not be processed (cached for its revision)
    "EmptyDatasetError": 500,
    "DatasetGenerationError": 500,
    "DatasetGenerationCastError": 500,
    "DataFilesNotFoundError": 500,
    "FileFormatMismatchBetweenSplitsError": 500,
    "ConfigNamesError": 500,
    "SplitsNamesError": 500,
    "SplitNamesFromStreamingError": 500,
    "FeaturesError": 500,
    "InfoError": 500,
    "StreamingRowsError": 500,
    "NormalRowsError": 500,
    "RowsPostProcessingError": 500,
    "TooManyColumnsError": 500,
    "TooLongColumnNameError": 500,
    "DatasetManualDownloadError": 500,
    "DatasetModuleNotInstalledError": 500,
    # 500: transient
    "ResponseNotReady": 500,
    "PreviousStepStillProcessingError": 500,
    "UnexpectedError": 500,
    "UnexpectedApiError": 500,
}
_ERROR_MESSAGES = {
    "NotSupportedDisabledViewerError": "Not supported: the dataset viewer is disabled in the "
    "dataset configuration (viewer: false in the card).",
    "DatasetWithScriptNotSupportedError": "The dataset viewer doesn't support this dataset "
    "because it runs arbitrary Python code.",
    "DatasetInBlockListError": "This dataset has been disabled for now.",
    "DatasetWithTooManyConfigsError": "The maximum number of configs allowed is 3000.",
    "NotSupportedTagNFAAError": "Not supported: the dataset has the not-for-all-audiences tag.",
    "NoSupportedFeaturesError": "None of the dataset's features is supported.",
    "PreviousStepStillProcessingError": "The previous steps are still being processed.",
    "UnexpectedError": "Unexpected error.",
    "EmptyDatasetError": "The dataset is empty.",
}
TRANSIENT_CODES = (
    "ResponseNotReady",
    "PreviousStepStillProcessingError",
    "UnexpectedError",
    "text",
)
PLAIN_TEXT_ERROR = "Internal Server Error."


def error_answer(code: str) -> ErrorAnswer:
    """The viewer's answer for ``code`` (status from :data:`ERROR_STATUS`, 500 if unknown)."""
    message = _ERROR_MESSAGES.get(code) or f"The dataset cannot be served ({code})."
    return ErrorAnswer(ERROR_STATUS.get(code, 500), message, code)


class PlainTextError(Exception):
    """A plain-text 500 without an error code (a proxy or a crashed worker answering)."""


class Viewer:
    """The viewer's endpoints over :class:`~dynosaur.emulators.repos.Repos`."""

    def __init__(self, repos: Repos) -> None:
        self.repos = repos
        self.snapshot = repos.snapshot

    def routes(self) -> list[BaseRoute]:
        """The viewer's routes (GET, and HEAD with them), at the server's root."""
        return [
            Route("/healthcheck", self.healthcheck, methods=["GET"]),
            Route("/is-valid", self.is_valid, methods=["GET"]),
            Route("/splits", self.splits, methods=["GET"]),
            Route("/info", self.info, methods=["GET"]),
            Route("/first-rows", self.first_rows, methods=["GET"]),
            Route("/rows", self.rows, methods=["GET"]),
        ]

    # --- what every endpoint checks ----------------------------------------------------------

    def _entry(self, request: Request) -> DatasetEntry:
        dataset_id = request.query_params.get("dataset")
        if not dataset_id:
            raise ErrorAnswer(422, "Parameter 'dataset' is required", "MissingRequiredParameter")
        entry = self.repos.existing(dataset_id)
        if entry is None or self.repos.gated(entry):
            if authenticated(request):
                raise ErrorAnswer(404, _NO_ACCESS_AUTH, "ExternalAuthenticatedError")
            raise ErrorAnswer(401, _NO_ACCESS, "ExternalUnauthenticatedError")
        try:
            card = self.snapshot.card(entry.id)
        except ValueError:  # an unreadable card: the viewer does not read it for this
            card = None
        if card is not None and isinstance(card.data, dict) and card.data.get("viewer") is False:
            raise error_answer("NotSupportedDisabledViewerError")
        code = self.repos.viewer_errors.get(entry.id)
        if code is not None:
            raise error_answer(code)
        if not self.repos.viewer_ready(entry):
            raise ErrorAnswer(500, _NOT_READY, "ResponseNotReady")
        transient = self.repos.viewer_transient.get(entry.id)
        if transient == "text":
            raise PlainTextError(PLAIN_TEXT_ERROR)
        if transient == "ResponseNotReady":
            raise ErrorAnswer(500, _NOT_READY, "ResponseNotReady")
        if transient is not None:
            raise error_answer(transient)
        return entry

    def _answer(self, entry: DatasetEntry, content: Any) -> Response:
        """A 200 answer with ``X-Revision``: the revision the viewer computed it for."""
        now = self.repos.now()
        sha = entry.revision_at(now).sha
        if entry.id in self.repos.viewer_stale:
            sha = entry.initial_sha  # the viewer has not caught up with the latest commit
        return json_response(content, headers={"X-Revision": sha})

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
        if config in self.repos.viewer_pending.get(entry.id, ()):
            raise ErrorAnswer(500, _NOT_READY, "ResponseNotReady")
        if config in self.repos.viewer_failed.get(entry.id, ()):
            raise self._rows_error(entry, config, "the split names could not be computed")
        if need_split and split not in self.snapshot.split_names(entry.id, config):
            raise ErrorAnswer(404, "Not found.", "ResponseNotFound")
        return config, split or ""

    def _rows_error(
        self, entry: DatasetEntry, config: str, cause: str | None = None
    ) -> ErrorAnswer:
        if cause is None:
            config_entry = self.snapshot.config_entry(entry.id, config)
            cause = (config_entry.reason if config_entry else None) or "no rows"
        return ErrorAnswer(
            500,
            f"Cannot load the dataset split (in streaming mode) to extract the first rows: {cause}",
            "StreamingRowsError",
        )

    def _read(self, entry: DatasetEntry, config: str, read: Callable[[], T]) -> T:
        """Read rows or features of a config; unreadable files (bad bytes, bad JSON) are the
        viewer's streaming error, as when the real one cannot decode a data file."""
        try:
            return read()
        except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError included
            raise self._rows_error(entry, config, f"{type(exc).__name__}: {exc}"[:300]) from None

    def _readable_rows(
        self, entry: DatasetEntry, config: str, split: str
    ) -> list[dict[str, Any]] | None:
        try:
            return self.snapshot.rows(entry.id, config, split)
        except ValueError:  # an unreadable rows file: no preview for it
            return None

    def _rows_and_features(
        self, entry: DatasetEntry, config: str, split: str
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        rows = self._read(entry, config, lambda: self.snapshot.rows(entry.id, config, split))
        features = self._read(entry, config, lambda: self.snapshot.features(entry.id, config))
        if rows is None or features is None:
            raise self._rows_error(entry, config)
        listed = [
            {"feature_idx": i, "name": name, "type": ftype}
            for i, (name, ftype) in enumerate(features.items())
        ]
        return rows, listed

    def _info_of(self, entry: DatasetEntry, config: str) -> dict[str, Any] | None:
        features = self._read(entry, config, lambda: self.snapshot.features(entry.id, config))
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

    # --- endpoints ---------------------------------------------------------------------------

    async def healthcheck(self, request: Request) -> Response:
        """``ok``: the server is up."""
        return Response("ok", media_type="text/plain")

    async def is_valid(self, request: Request) -> Response:
        """Which viewer features work for the dataset (all of them when it has rows)."""
        entry = self._entry(request)
        has_rows = any(
            self._readable_rows(entry, c, s)
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
        """The dataset's (config, split) pairs; configs without splits are listed as failed."""
        entry = self._entry(request)
        wanted = request.query_params.get("config")
        configs = self.snapshot.config_names(entry.id)
        if wanted is not None:
            if wanted not in configs:
                raise ErrorAnswer(404, "Not found.", "ResponseNotFound")
            configs = [wanted]
        found: list[dict[str, Any]] = []
        pending: list[dict[str, Any]] = []
        failed: list[dict[str, Any]] = []
        pending_names = self.repos.viewer_pending.get(entry.id, set())
        failed_names = self.repos.viewer_failed.get(entry.id, set())
        for config in configs:
            item = {"kind": "config-split-names", "dataset": entry.id, "config": config}
            if config in pending_names:
                pending.append(item)
                continue
            names = self.snapshot.split_names(entry.id, config)
            if not names or config in failed_names:
                error = {
                    "error": "Cannot get the split names for the config.",
                    "cause_exception": "SplitNamesFromStreamingError",
                }
                failed.append({**item, "error": error})
                continue
            found.extend({"dataset": entry.id, "config": config, "split": s} for s in names)
        return self._answer(entry, {"splits": found, "pending": pending, "failed": failed})

    async def info(self, request: Request) -> Response:
        """The ``dataset_info`` of one config, or of every config without ``config``."""
        entry = self._entry(request)
        if request.query_params.get("config") is None:
            infos: dict[str, Any] = {}
            failed = []
            for config in self.snapshot.config_names(entry.id):
                try:
                    info = self._info_of(entry, config)
                except ErrorAnswer:
                    info = None
                if info is None:
                    failed.append({"kind": "config-info", "dataset": entry.id, "config": config})
                else:
                    infos[config] = info
            return self._answer(
                entry, {"dataset_info": infos, "pending": [], "failed": failed, "partial": False}
            )
        config, _ = self._config_split(request, entry, need_split=False)
        info = self._info_of(entry, config)
        if info is None:
            raise self._rows_error(entry, config)
        return self._answer(entry, {"dataset_info": info, "partial": False})

    async def first_rows(self, request: Request) -> Response:
        """The features and the first rows (at most 100) of a split."""
        entry = self._entry(request)
        config, split = self._config_split(request, entry, need_split=True)
        rows, features = self._rows_and_features(entry, config, split)
        limit = self.repos.truncate_cells
        return self._answer(
            entry,
            {
                "dataset": entry.id,
                "config": config,
                "split": split,
                "features": features,
                "rows": [_row_item(i, row, limit) for i, row in enumerate(rows[:MAX_ROWS_LENGTH])],
                "truncated": False,
            },
        )

    async def rows(self, request: Request) -> Response:
        """A page of rows (``offset``, ``length`` <= 100) of a split."""
        entry = self._entry(request)
        config, split = self._config_split(request, entry, need_split=True)
        offset = _int(request, "offset", 0)
        length = _int(request, "length", MAX_ROWS_LENGTH)
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
        return self._answer(
            entry,
            {
                "features": features,
                "rows": [
                    {"row_idx": offset + i, "row": row, "truncated_cells": []}
                    for i, row in enumerate(rows[offset : offset + length])
                ],
                "num_rows_total": len(rows),
                "num_rows_per_page": MAX_ROWS_LENGTH,
                "partial": False,
            },
        )


def _row_item(index: int, row: dict[str, Any], limit: int) -> dict[str, Any]:
    """A ``rows`` item; with ``limit``, cells longer than it (as JSON) are cut to a string of
    that length and named in ``truncated_cells``, as the viewer does for large answers."""
    if not limit:
        return {"row_idx": index, "row": row, "truncated_cells": []}
    cut: dict[str, Any] = {}
    truncated: list[str] = []
    for name, value in row.items():
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        if len(text) > limit:
            cut[name] = text[:limit]
            truncated.append(name)
        else:
            cut[name] = value
    return {"row_idx": index, "row": cut, "truncated_cells": truncated}


def _int(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ErrorAnswer(
            422, f"Parameter '{name}' must be an integer", "InvalidParameter"
        ) from None
