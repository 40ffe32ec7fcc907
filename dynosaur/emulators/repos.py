"""The emulated Hub's dataset repos at its simulated now, and how the Hub says no.

:class:`Repos` is what the Hub API (:mod:`.hub`) and the Dataset Viewer (:mod:`.viewer`) both
read: the snapshot, the clock (a dataset exists from its ``created_at``), which datasets are
gated, whose viewer is not ready, and revisions changed by a test (:meth:`Repos.set_revision`).
:class:`ErrorAnswer` is the error both answer with: the real status, the Hub's ``X-Error-Code``
and a JSON ``{"error": ...}`` body.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from dynosaur.emulators._server import json_response
from dynosaur.emulators.snapshot import DatasetEntry, Revision, Snapshot, parse_time

if TYPE_CHECKING:
    from dynosaur.emulators.options import HubOptions

REPO_NOT_FOUND = "Repository not found"


def _pairs(items: Iterable[str]) -> dict[str, str]:
    """``dataset_id=value`` items as a dict (the last value of an id wins)."""
    return dict(item.rsplit("=", 1) for item in items)


def _pair_sets(items: Iterable[str]) -> dict[str, set[str]]:
    """``dataset_id=value`` items as a dict of sets (an id may have several)."""
    out: dict[str, set[str]] = {}
    for item in items:
        key, value = item.rsplit("=", 1)
        out.setdefault(key, set()).add(value)
    return out


class ErrorAnswer(Exception):
    """Raised by a handler to answer with an error: status, the Hub's X-Error-Code, message,
    and any other header the real answer carries (e.g. ``X-Repo-Commit``)."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = headers or {}

    def response(self, request_id: str) -> Response:
        """The answer, with the request's id."""
        headers = {
            "X-Request-Id": request_id,
            "X-Error-Message": _header_safe(self.message),
            **self.headers,
        }
        if self.code:
            headers["X-Error-Code"] = self.code
        return json_response({"error": self.message}, self.status, headers)


def _header_safe(text: str) -> str:
    return text.encode("ascii", "replace").decode("ascii")[:500]


def authenticated(request: Request) -> bool:
    """Whether the request carries a token (the Hub answers missing repos differently)."""
    return "authorization" in request.headers


class Repos:
    """The snapshot's datasets as the Hub shows them at the simulated now. Knobs are set from
    the tests' thread between requests; the server thread reads them."""

    def __init__(
        self,
        snapshot: Snapshot,
        *,
        now: datetime | None = None,
        gated: Iterable[str] = (),
        viewer_not_ready: Iterable[str] = (),
    ) -> None:
        self.snapshot = snapshot
        self.now_override = now
        self.gated_ids = set(gated)
        self.viewer_not_ready = set(viewer_not_ready)
        # The viewer's own answers (knobs of HubOptions; see .viewer).
        self.viewer_errors: dict[str, str] = {}
        self.viewer_transient: dict[str, str] = {}
        self.viewer_pending: dict[str, set[str]] = {}
        self.viewer_failed: dict[str, set[str]] = {}
        self.viewer_stale: set[str] = set()
        self.truncate_cells = 0
        self.deleted_ids: set[str] = set()
        self.unavailable_ids: set[str] = set()
        self.relicensed: dict[str, str] = {}
        self._lock = threading.Lock()

    def apply_viewer(self, options: HubOptions) -> None:
        """Take the viewer knobs of ``options``."""
        self.viewer_errors = _pairs(options.viewer_errors)
        self.viewer_transient = _pairs(options.viewer_transient)
        self.viewer_pending = _pair_sets(options.viewer_pending)
        self.viewer_failed = _pair_sets(options.viewer_failed)
        self.viewer_stale = set(options.viewer_stale)
        self.truncate_cells = options.truncate_cells

    def now(self) -> datetime:
        """The simulated now, or the real one."""
        return self.now_override if self.now_override is not None else datetime.now(UTC)

    def existing(self, dataset_id: str) -> DatasetEntry | None:
        """The dataset if it exists now; a 503 for one the Hub cannot serve now (the
        ``unavailable`` knob)."""
        if dataset_id in self.unavailable_ids:
            raise ErrorAnswer(503, f"{dataset_id} cannot be served right now, try again later")
        entry = self.snapshot.entries.get(dataset_id)
        if entry is None or dataset_id in self.deleted_ids:
            return None
        return entry if entry.exists_at(self.now()) else None

    def entry(self, dataset_id: str, request: Request) -> DatasetEntry:
        """An existing dataset, or the Hub's answer for a missing one (401 anonymous, 404 with
        a token)."""
        entry = self.existing(dataset_id)
        if entry is None:
            status = 404 if authenticated(request) else 401
            raise ErrorAnswer(status, REPO_NOT_FOUND, "RepoNotFound")
        return entry

    def gated(self, entry: DatasetEntry) -> str | None:
        """The gating mode ("auto", "manual") of a gated dataset, None when it is open."""
        if entry.gated:
            return entry.gated
        return "manual" if entry.id in self.gated_ids else None

    def viewer_ready(self, entry: DatasetEntry) -> bool:
        """Whether the viewer has processed the dataset by now."""
        return entry.id not in self.viewer_not_ready and entry.viewer_ready_at(self.now())

    def revision(self, entry: DatasetEntry, revision: str) -> Revision:
        """The revision ``revision`` ("main", or a sha known now) of a dataset."""
        now = self.now()
        current = entry.revision_at(now)
        if revision in ("main", current.sha):
            return current
        if revision in entry.known_shas(now):
            dated = entry.created_at if revision == entry.initial_sha else current.last_modified
            return Revision(revision, dated)
        raise ErrorAnswer(404, f"Invalid rev id: {revision}", "RevisionNotFound")

    def set_revision(
        self, dataset_id: str, sha: str, last_modified: datetime | str | None = None
    ) -> None:
        """Make ``dataset_id`` show a new revision (a changed dataset) from now on."""
        entry = self.snapshot.entries.get(dataset_id)
        if entry is None:
            raise KeyError(f"{dataset_id} is not in the snapshot")
        moment = parse_time(last_modified) if last_modified is not None else self.now()
        with self._lock:
            entry.past_shas.add(entry.revision_at(self.now()).sha)
            entry.override = Revision(sha, moment)
