"""The emulators' knobs, defined once: :class:`HubOptions` and :class:`LLMOptions`.

The emulators are built from them, ``dynosaur emulate hub|llm`` derives its flags from their
fields (name, default, help, bounds), and the demo, the benches and the tests build them like any
dataclass. Values are checked here, whoever builds the options; text is accepted where the
command line gives text (an ISO ``now``, comma-separated ids).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import field
from datetime import datetime
from pathlib import Path
from typing import Any

from dynosaur.emulators.snapshot import parse_time

# The largest listing page the real Hub serves.
MAX_PAGE = 1000


def knob(
    help: str,
    *,
    min: float | None = None,
    max: float | None = None,
    flag: str | None = None,
    exists: bool = False,
    dir_okay: bool = True,
) -> dict[str, Any]:
    """A field's metadata: what the command line needs to offer it (help, bounds, also checked
    in code; for paths, whether the file must exist or may be a folder; a flag name when it is
    not the field's)."""
    return {
        "help": help,
        "min": min,
        "max": max,
        "flag": flag,
        "exists": exists,
        "dir_okay": dir_okay,
    }


@dataclasses.dataclass(frozen=True)
class _Options:
    """What both options classes share: bounds checks, and the knobs as keyword arguments."""

    def _check(self) -> None:
        for item in dataclasses.fields(self):
            low, high = item.metadata.get("min"), item.metadata.get("max")
            value = getattr(self, item.name)
            if low is not None and value < low:
                raise ValueError(f"{item.name} must be at least {low}, got {value}")
            if high is not None and value > high:
                raise ValueError(f"{item.name} must be at most {high}, got {value}")

    def _set(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)  # normalising a frozen dataclass in __post_init__

    def knobs(self) -> dict[str, Any]:
        """The options as keyword arguments (the emulators' constructors take these names)."""
        return {item.name: getattr(self, item.name) for item in dataclasses.fields(self)}


def _ids(value: str | Iterable[str]) -> tuple[str, ...]:
    """Dataset ids from a comma-separated text or an iterable of ids."""
    parts = value.split(",") if isinstance(value, str) else value
    return tuple(part.strip() for part in parts if part and part.strip())


def _pairs(name: str, value: str | Iterable[str]) -> tuple[str, ...]:
    """``dataset_id=value`` items, checked (ids contain slashes, so ``=`` separates)."""
    items = _ids(value)
    bad = [item for item in items if "=" not in item.strip("=")]
    if bad:
        raise ValueError(f"{name} takes dataset_id=value items, got {', '.join(bad)}")
    return items


def _moment(value: datetime | str | None) -> datetime | None:
    """A UTC datetime from a datetime (naive = UTC) or ISO text."""
    if value is None:
        return None
    try:
        return parse_time(value)
    except ValueError:
        raise ValueError(f"now must be an ISO date or datetime, got {value!r}") from None


@dataclasses.dataclass(frozen=True)
class HubOptions(_Options):
    """The Hub emulator's snapshot and knobs."""

    snapshot: Path | None = field(
        default=None,
        metadata=knob("Snapshot folder (index.jsonl, datasets/); default: the project's own."),
    )
    now: datetime | None = field(
        default=None,
        metadata=knob("Simulated now (ISO date/datetime, UTC): datasets exist from created_at on."),
    )
    latency: float = field(default=0.0, metadata=knob("Seconds added to every answer.", min=0))
    rate_429: float = field(default=0.0, metadata=knob("Share of 429 answers.", min=0, max=1))
    rate_5xx: float = field(default=0.0, metadata=knob("Share of 5xx answers.", min=0, max=1))
    retry_after: float = field(
        default=1.0, metadata=knob("Retry-After of 429 answers, seconds.", min=0)
    )
    gated: tuple[str, ...] = field(
        default=(), metadata=knob("Extra gated dataset ids, comma-separated.")
    )
    viewer_not_ready: tuple[str, ...] = field(
        default=(),
        metadata=knob("Dataset ids whose viewer answers 'not ready', comma-separated."),
    )
    deleted: tuple[str, ...] = field(
        default=(),
        metadata=knob(
            "Dataset ids deleted (or made private: outsiders see the same 404), comma-separated."
        ),
    )
    relicensed: tuple[str, ...] = field(
        default=(),
        metadata=knob("New card licenses as id=license pairs, comma-separated."),
    )
    unavailable: tuple[str, ...] = field(
        default=(),
        metadata=knob(
            "Dataset ids the Hub cannot serve now: every request about them (API, files, "
            "viewer) answers 503, comma-separated."
        ),
    )
    page_size: int = field(
        default=MAX_PAGE, metadata=knob("Listing page size.", min=1, max=MAX_PAGE)
    )
    seed: int = field(default=0, metadata=knob("Seed of the injected faults."))
    # --- the Dataset Viewer's own answers (see dynosaur.emulators.viewer) ---
    viewer_errors: tuple[str, ...] = field(
        default=(),
        metadata=knob(
            "dataset_id=X-Error-Code items: the viewer answers that permanent error (501, 404 or "
            "500 as the real one does), comma-separated."
        ),
    )
    viewer_transient: tuple[str, ...] = field(
        default=(),
        metadata=knob(
            "dataset_id=code items: the viewer answers a transient 500 (ResponseNotReady, "
            "PreviousStepStillProcessingError, UnexpectedError, or 'text' for a plain-text 500)."
        ),
    )
    viewer_pending: tuple[str, ...] = field(
        default=(),
        metadata=knob("dataset_id=config items: configs /splits lists as still pending."),
    )
    viewer_failed: tuple[str, ...] = field(
        default=(),
        metadata=knob("dataset_id=config items: configs /splits lists as failed."),
    )
    viewer_stale: tuple[str, ...] = field(
        default=(),
        metadata=knob("Dataset ids whose viewer answers are for an older revision (X-Revision)."),
    )
    truncate_cells: int = field(
        default=0,
        metadata=knob("Cut /first-rows cells longer than this many characters (0: never).", min=0),
    )
    echo_auth: bool = field(
        default=False,
        metadata=knob("Echo the request's Authorization header in error answers (leak tests)."),
    )
    # --- the Hub's quotas: fixed windows per bucket, per caller (token, else address) ---
    quota_window: int = field(
        default=300, metadata=knob("Seconds of a quota window (the Hub: 5 minutes).", min=1)
    )
    quota_api: int = field(
        default=500, metadata=knob("Hub API requests per window, anonymous (0: no limit).", min=0)
    )
    quota_resolvers: int = field(
        default=3000,
        metadata=knob("File resolves (/resolve/) per window, anonymous (0: no limit).", min=0),
    )
    quota_pages: int = field(
        default=100, metadata=knob("Web page requests per window, anonymous (0: no limit).", min=0)
    )
    token_quota_api: int = field(
        default=1000, metadata=knob("Hub API requests per window with a token.", min=0)
    )
    token_quota_resolvers: int = field(
        default=5000, metadata=knob("File resolves per window with a token.", min=0)
    )
    token_quota_pages: int = field(
        default=200, metadata=knob("Web page requests per window with a token.", min=0)
    )
    request_log_path: Path | None = field(
        default=None,
        metadata=knob(
            "Append one JSON line per request to this file.",
            flag="--request-log",
            dir_okay=False,
        ),
    )

    def __post_init__(self) -> None:
        if self.snapshot is not None:
            self._set("snapshot", Path(self.snapshot))
        if self.request_log_path is not None:
            self._set("request_log_path", Path(self.request_log_path))
        self._set("now", _moment(self.now))
        self._set("gated", _ids(self.gated))
        self._set("viewer_not_ready", _ids(self.viewer_not_ready))
        for name in ("viewer_errors", "viewer_transient", "viewer_pending", "viewer_failed"):
            self._set(name, _pairs(name, getattr(self, name)))
        self._set("viewer_stale", _ids(self.viewer_stale))
        self._set("deleted", _ids(self.deleted))
        self._set("relicensed", _ids(self.relicensed))
        self._set("unavailable", _ids(self.unavailable))
        bad = [pair for pair in self.relicensed if "=" not in pair]
        if bad:
            raise ValueError(f"relicensed takes id=license pairs, not {', '.join(bad)}")
        self._check()
        if self.rate_429 + self.rate_5xx > 1:
            raise ValueError("rate_429 + rate_5xx must not exceed 1")


_LLM_FAULTS = ("rate_429", "rate_5xx", "rate_hang", "rate_malformed", "rate_truncated")


@dataclasses.dataclass(frozen=True)
class LLMOptions(_Options):
    """The LLM emulator's reference tasks and knobs (the names of ``LLMEmulator``'s keywords)."""

    reference: Path | None = field(
        default=None,
        metadata=knob(
            "JSONL of recorded tasks to replay (dataset, config, instruction, ...).",
            exists=True,
            dir_okay=False,
        ),
    )
    latency: float = field(default=0.0, metadata=knob("Seconds added to every answer.", min=0))
    jitter: float = field(
        default=0.0, metadata=knob("Up to this many more seconds, random.", min=0)
    )
    rate_429: float = field(default=0.0, metadata=knob("Share of 429 answers.", min=0, max=1))
    rate_5xx: float = field(default=0.0, metadata=knob("Share of 5xx answers.", min=0, max=1))
    rate_hang: float = field(
        default=0.0, metadata=knob("Share of requests left hanging.", min=0, max=1)
    )
    rate_malformed: float = field(
        default=0.0, metadata=knob("Share of non-JSON answers.", min=0, max=1)
    )
    rate_truncated: float = field(default=0.0, metadata=knob("Share of cut answers.", min=0, max=1))
    invalid_share: float = field(
        default=0.0,
        metadata=knob(
            "Share of derived tasks made invalid (to exercise the filters).", min=0, max=1
        ),
    )
    suspicious_share: float = field(
        default=0.0,
        metadata=knob(
            "Share of valid tasks given a link, a reader instruction or a secret.", min=0, max=1
        ),
    )
    obedient: bool = field(
        default=False,
        metadata=knob("Follow instructions injected into card text (links, 'reveal your key')."),
    )
    retry_after: float = field(
        default=1.0, metadata=knob("Retry-After of 429 answers, seconds.", min=0)
    )
    hang_seconds: float = field(
        default=3600.0, metadata=knob("How long a hanging request hangs.", min=0)
    )
    seed: int = field(default=0, metadata=knob("Seed of the faults and derived tasks."))
    hold: int = field(
        default=0,
        metadata=knob("Answer only once this many requests wait (tests of concurrency).", min=0),
    )
    request_log_path: Path | None = field(
        default=None,
        metadata=knob(
            "Append one JSON line per request to this file.",
            flag="--request-log",
            dir_okay=False,
        ),
    )
    strict: bool = field(
        default=False,
        metadata=knob(
            "The real API's strictness: unknown models 404; reasoning-family models (o1, o3, "
            "o4, gpt-5) reject max_tokens and temperatures other than 1 (400)."
        ),
    )
    context_tokens: int = field(
        default=128_000,
        metadata=knob("Context window: longer requests get 400 context_length_exceeded.", min=1),
    )
    quota_requests: int = field(
        default=-1,
        metadata=knob("Answer 429 insufficient_quota after this many answers (-1: never).", min=-1),
    )
    rpm: int = field(
        default=0,
        metadata=knob("Requests per minute (x-ratelimit-* headers, 429 beyond); 0: none.", min=0),
    )
    tpm: int = field(
        default=0,
        metadata=knob("Tokens per minute (x-ratelimit-* headers, 429 beyond); 0: none.", min=0),
    )

    def __post_init__(self) -> None:
        for name in ("reference", "request_log_path"):
            value = getattr(self, name)
            if value is not None:
                self._set(name, Path(value))
        self._check()
        if sum(getattr(self, name) for name in _LLM_FAULTS) > 1:
            raise ValueError("the fault rates must not add up to more than 1")


__all__ = ["MAX_PAGE", "HubOptions", "LLMOptions", "knob"]
