"""The Dataset Viewer API of the Hub emulator: ``/is-valid``, ``/splits``, ``/info``,
``/first-rows``, ``/rows`` (and ``/healthcheck``), answered from the snapshot.

Answers carry the real fields (``features`` with ``feature_idx``, ``rows`` with ``row_idx`` and
``truncated_cells``, ``num_rows_total``...), so ``datasets.Features.from_dict`` reads them. Errors
are the viewer's: 401/404 ``External(Un)AuthenticatedError`` for a missing, private or gated
dataset, 500 ``ResponseNotReady`` while the dataset is not processed yet, 404
``ResponseNotFound`` for an unknown config or split, 422 for missing or bad parameters, 500
``StreamingRowsError`` for a config whose rows cannot be read.
"""

from __future__ import annotations

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
        if not self.repos.viewer_ready(entry):
            raise ErrorAnswer(500, _NOT_READY, "ResponseNotReady")
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
        failed: list[dict[str, Any]] = []
        for config in configs:
            names = self.snapshot.split_names(entry.id, config)
            if not names:
                failed.append({"kind": "config-split-names", "dataset": entry.id, "config": config})
            found.extend({"dataset": entry.id, "config": config, "split": s} for s in names)
        return json_response({"splits": found, "pending": [], "failed": failed})

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
            return json_response(
                {"dataset_info": infos, "pending": [], "failed": failed, "partial": False}
            )
        config, _ = self._config_split(request, entry, need_split=False)
        info = self._info_of(entry, config)
        if info is None:
            raise self._rows_error(entry, config)
        return json_response({"dataset_info": info, "partial": False})

    async def first_rows(self, request: Request) -> Response:
        """The features and the first rows (at most 100) of a split."""
        entry = self._entry(request)
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
