"""Discover: which dataset revisions are new, from the Hub's listings or from explicit ids.

A window lists datasets created in it, then (separately) those modified in it, each listing
sorted newest first and abandoned as soon as it passes the window's start: the cost grows with
what is new, not with the size of the Hub. Explicit ids skip the listing. Every revision found
is upserted by (dataset_id, sha): one seen before is a no-op, a new sha is a new row to collect.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from dynosaur.errors import HubRequestError
from dynosaur.hub.client import (
    HubClient,
    HubDataset,
    Sort,
    check_dataset_id,
    hub_url,
    list_datasets,
    make_api,
)
from dynosaur.model import StepSummary, Window
from dynosaur.progress import NullProgress, Progress
from dynosaur.reasons import Reason
from dynosaur.settings import Settings
from dynosaur.store.datasets import NewRevision, insert_revisions


@dataclass
class DiscoverResult:
    """What discover found: the new ``hub_dataset`` rows, how many revisions it saw, counts."""

    new_ids: list[int] = field(default_factory=list)
    seen: int = 0
    summary: StepSummary = field(default_factory=lambda: StepSummary("discover"))
    problems: list[str] = field(default_factory=list)  # explicit ids that could not be added


def in_window(listing: Iterable[HubDataset], window: Window, sort: Sort) -> Iterator[HubDataset]:
    """The items of a newest-first listing whose date (by ``sort``) falls in ``window``;
    stops reading at the first item older than the window's start."""
    for item in listing:
        moment = item.created_at if sort == "created_at" else item.last_modified
        if moment is None:
            continue
        if moment >= window.end:
            continue  # newer than the window: keep paging back
        if moment < window.start:
            return
        yield item


def discover(
    settings: Settings,
    engine: Engine,
    *,
    window: Window | None = None,
    ids: Sequence[str] | None = None,
    limit: int | None = None,
    include_modified: bool = True,
    progress: Progress | None = None,
) -> DiscoverResult:
    """Find new dataset revisions in ``window`` (or the explicit ``ids``) and store them.

    ``limit`` caps how many revisions are taken (newest first). Returns the new rows' ids.
    """
    if window is None and not ids:
        raise ValueError("discover needs a window or explicit dataset ids")
    progress = progress or NullProgress()
    result = DiscoverResult()
    found: list[tuple[HubDataset, str]] = []
    if ids:
        found = _explicit(settings, ids, result, progress)
    else:
        assert window is not None
        found = _listed(settings, window, include_modified, limit, progress)
    if limit is not None:
        found = found[:limit]
    result.seen = len(found)
    inserted = insert_revisions(
        engine,
        [
            NewRevision(
                dataset_id=item.dataset_id,
                sha=item.sha,
                created_at=item.created_at,
                last_modified=item.last_modified,
                discovered_via=via,
                hub_url=hub_url(settings.hub_endpoint, item.dataset_id),
                gated=item.gated,
                private=item.private,
            )
            for item, via in found
        ],
    )
    for (_, via), row_id in zip(found, inserted, strict=True):
        if row_id is None:
            result.summary.add("unchanged")
        else:
            result.new_ids.append(row_id)
            result.summary.add("discovered", None)
            key = f"new_{via}"
            result.summary.figures[key] = int(result.summary.figures.get(key, 0)) + 1
    result.summary.figures["new"] = len(result.new_ids)
    result.summary.figures["seen"] = result.seen
    progress.finish()
    return result


def _listed(
    settings: Settings,
    window: Window,
    include_modified: bool,
    limit: int | None,
    progress: Progress,
) -> list[tuple[HubDataset, str]]:
    """Created (then modified) revisions in the window, newest first, one per (id, sha)."""
    progress.start(None, "discover: listing the Hub")
    api = make_api(settings)
    found: dict[tuple[str, str], tuple[HubDataset, str]] = {}
    listings: list[Sort] = ["created_at", "last_modified"] if include_modified else ["created_at"]
    for sort in listings:
        for item in in_window(list_datasets(api, sort), window, sort):
            if not item.sha:
                continue  # no revision to key it by (the Hub always sends one)
            via = "created"
            if sort == "last_modified":
                # A dataset created in the window was listed as created already.
                if item.created_at is not None and item.created_at >= window.start:
                    continue
                via = "modified"
            found.setdefault((item.dataset_id, item.sha), (item, via))
            progress.advance(1)
            if limit is not None and len(found) >= limit:
                break
        if limit is not None and len(found) >= limit:
            break
    return list(found.values())


def _explicit(
    settings: Settings, ids: Sequence[str], result: DiscoverResult, progress: Progress
) -> list[tuple[HubDataset, str]]:
    """The latest revision of each explicit id (bypassing the listing)."""
    wanted = list(dict.fromkeys(i.strip() for i in ids if i and i.strip()))
    progress.start(len(wanted), "discover: explicit datasets")
    valid: list[str] = []
    for dataset_id in wanted:
        problem = check_dataset_id(dataset_id)
        if problem is None:
            valid.append(dataset_id)
            continue
        result.summary.add("rejected", Reason.INVALID_ID)
        result.problems.append(f"{dataset_id!r}: {problem}")
        progress.advance(1)
    return asyncio.run(_infos(settings, valid, result, progress))


async def _infos(
    settings: Settings, ids: Sequence[str], result: DiscoverResult, progress: Progress
) -> list[tuple[HubDataset, str]]:
    async with HubClient(settings) as client:

        async def one(dataset_id: str) -> HubDataset | None:
            try:
                return await client.dataset_info(dataset_id)
            except HubRequestError as exc:
                result.summary.add("rejected", exc.reason)
                result.problems.append(f"{dataset_id}: {exc}")
                return None
            finally:
                progress.advance(1)

        infos = await asyncio.gather(*(one(i) for i in ids))
    return [(info, "explicit") for info in infos if info is not None and info.sha]
