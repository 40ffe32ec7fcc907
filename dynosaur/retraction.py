"""Keeping the collection honest after publication: retract the instances of a source dataset
that was deleted, made private, gated or relicensed to a class the collection does not take.

Two ways in: :func:`retract` by hand (``dynosaur retract DATASET``), and :func:`sweep`, which
rechecks up to ``retraction_checks_per_run`` sources of the collection on the Hub, the longest
unchecked first, so that every source is seen again within (sources / checks per run) runs
while a run spends a fixed share of the Hub quota. The growth run sweeps after discovery.

What counts, as the Hub shows it to us:

- "not found" for a repo we collected: deleted, or made private (outsiders cannot tell these
  apart) -> ``source_withdrawn``;
- gated now -> ``source_gated``;
- the card declares licenses that differ from those collected and whose class is not allowed
  (``DYNOSAUR_LICENSE_CLASSES``, :mod:`dynosaur.licenses`) -> ``license_withdrawn``. A card
  that declares none is not taken as a change: the collected license may have come from a
  fallback.

The rechecks go through :class:`~dynosaur.hub.client.HubClient`, as collect's requests do: the
same request slots, retry policy and per-bucket quota limiter. Anything else (network errors, 5xx,
rate limits after the retries) leaves the source unretracted and due again.
A retraction applies from the next version on: published versions keep their rows.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from dynosaur.licenses import (
    DEFAULT_ALLOWED,
    LicenseClass,
    dataset_license_class,
    usable_licenses,
)
from dynosaur.reasons import Reason
from dynosaur.settings import Settings
from dynosaur.store import retractions
from dynosaur.store.retractions import Retraction, Source

if TYPE_CHECKING:
    from dynosaur.hub.client import HubClient

log = logging.getLogger(__name__)

UNREACHABLE = "unreachable"


@dataclass
class SweepResult:
    """What one sweep checked and retracted."""

    checked: int = 0
    retracted: list[Retraction] = field(default_factory=list)
    unreachable: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {
            "checked": self.checked,
            "retracted": {r.dataset_id: r.reason for r in self.retracted},
            "unreachable": len(self.unreachable),
        }


def retract(engine: Engine, dataset_id: str, note: str | None = None) -> Retraction | None:
    """Retract ``dataset_id`` by hand from the next version on; None when already retracted."""
    return retractions.record(engine, dataset_id, Reason.RETRACTED_BY_HAND, note=note)


async def check_source(
    hub: HubClient, source: Source, allowed: Iterable[LicenseClass] = DEFAULT_ALLOWED
) -> Reason | str:
    """Why ``source`` must be retracted (a :class:`Reason`), or ``"ok"``, or ``"unreachable"``
    when the Hub did not give a usable answer."""
    from dynosaur.errors import HubRequestError

    try:
        info = await hub.dataset_info(source.dataset_id)
    except HubRequestError as exc:
        if exc.reason == Reason.NOT_FOUND and not exc.transient:
            return Reason.SOURCE_WITHDRAWN
        if exc.reason == Reason.GATED and not exc.transient:
            return Reason.SOURCE_GATED
        log.warning("recheck of %s failed: %s", source.dataset_id, exc.reason)
        return UNREACHABLE
    if info.private:
        return Reason.SOURCE_WITHDRAWN
    if info.gated:
        return Reason.SOURCE_GATED
    # `unknown` on the card names no license: a collected one came from a fallback (the
    # Licensing section, dataset_infos.json) and still holds.
    declared = tuple(usable_licenses(info.licenses))
    changed = bool(declared) and set(declared) != set(source.licenses)
    if changed and dataset_license_class(declared) not in set(allowed):
        return Reason.LICENSE_WITHDRAWN
    return "ok"


async def _check_all(
    settings: Settings, sources: Sequence[Source], allowed: frozenset[LicenseClass]
) -> list[Reason | str]:
    from dynosaur.hub.client import HubClient

    async with HubClient(settings) as hub:
        return list(await asyncio.gather(*(check_source(hub, s, allowed) for s in sources)))


def sweep(
    settings: Settings,
    engine: Engine,
    *,
    limit: int | None = None,
    allowed: Iterable[LicenseClass] | None = None,
) -> SweepResult:
    """Recheck up to ``limit`` (default ``settings.retraction_checks_per_run``) sources of the
    collection, the longest unchecked first; retract those the Hub no longer allows us."""
    result = SweepResult()
    due = retractions.sources_due(
        engine, settings.retraction_checks_per_run if limit is None else limit
    )
    if not due:
        return result
    allowed = frozenset(settings.allowed_license_classes if allowed is None else allowed)
    outcomes = asyncio.run(_check_all(settings, due, allowed))
    for source, outcome in zip(due, outcomes, strict=True):
        result.checked += 1
        retractions.record_check(engine, source.dataset_id, str(outcome))
        if outcome == UNREACHABLE:
            result.unreachable.append(source.dataset_id)
        elif isinstance(outcome, Reason):
            done = retractions.record(engine, source.dataset_id, outcome, revision=source.sha)
            if done is not None:
                log.warning(
                    "retracted %s from version %s on: %s",
                    done.dataset_id,
                    done.from_version,
                    done.reason,
                )
                result.retracted.append(done)
    return result
