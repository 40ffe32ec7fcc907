"""Plain data shared by the layers: a field, a task, a time window, a config's metadata, and
what a step reports (:class:`StepSummary`).

These are the contracts between steps: collect writes ``FieldInfo`` lists into
``dataset_config.fields`` (JSON), generate reads them to build prompts, curate reads them to build
instances. Keep them small, immutable and JSON-friendly.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

MEDIA_TYPES = frozenset({"image", "audio", "video", "pdf"})


@dataclass(frozen=True)
class FieldInfo:
    """One top-level column of a config's rows, as the prompts and instance builder see it.

    ``type`` is a short readable type: a `datasets` dtype (``string``, ``int64``, ``bool`` ...),
    ``class_label``, ``list<...>`` for sequences, ``dict`` for nested records, ``translation``,
    or a media type (``image``, ``audio``, ``video``). ``labels`` are the ClassLabel names for
    ``class_label`` and ``list<class_label>`` fields; sample rows already hold names, not ints.
    """

    name: str
    type: str
    labels: tuple[str, ...] | None = None

    @property
    def is_media(self) -> bool:
        """Image, audio or video (alone or inside a list/dict)."""
        return any(m in self.type for m in MEDIA_TYPES)

    @property
    def is_scalar(self) -> bool:
        """A single value per row (string, number, bool, class label)."""
        return not (self.type.startswith(("list", "dict", "translation")) or self.is_media)

    def to_json(self) -> dict[str, Any]:
        """JSON form stored in ``dataset_config.fields``."""
        out = asdict(self)
        out["labels"] = list(self.labels) if self.labels is not None else None
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FieldInfo:
        """Inverse of :meth:`to_json`."""
        labels = data.get("labels")
        return cls(name=data["name"], type=data["type"], labels=tuple(labels) if labels else None)


def fields_from_json(data: list[dict[str, Any]]) -> list[FieldInfo]:
    """Parse a ``dataset_config.fields`` JSON list."""
    return [FieldInfo.from_json(item) for item in data]


@dataclass(frozen=True)
class Task:
    """A task: an instruction, the input fields and one output field, as the LLM proposed it.

    The same object at every step: parsed from an answer (``raw`` = the proposal as written,
    ``id`` None), stored as a ``task`` row, read back by curate (``id`` = ``task.id``). A part the
    answer did not give in a readable shape is None, so that curate rejects it with a reason.
    """

    instruction: str | None
    input_fields: tuple[str, ...] | None
    output_field: str | None
    raw: str | None = None
    id: int | None = None
    problem: str | None = None  # a reason code: why the parser could not read a part
    # The output fields named after the first when the task names several (the original keeps
    # the first as the output: ``multiple_output_fields`` setting).
    extra_output_fields: tuple[str, ...] = ()

    @property
    def output_fields(self) -> tuple[str, ...]:
        """Every output field the task names: the output field, then any extra ones."""
        return (*((self.output_field,) if self.output_field else ()), *self.extra_output_fields)

    @property
    def fields(self) -> tuple[str, ...]:
        """Input fields then the output field(s), as named by the task."""
        return (*(self.input_fields or ()), *self.output_fields)


@dataclass(frozen=True)
class Window:
    """A half-open time interval [start, end) in UTC: a run's data interval."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        for value in (self.start, self.end):
            if value.tzinfo is None:
                raise ValueError("window bounds must be timezone-aware")
        if not self.start < self.end:
            raise ValueError(f"window start {self.start} is not before its end {self.end}")

    def __contains__(self, moment: datetime) -> bool:
        return self.start <= moment < self.end

    @classmethod
    def parse(cls, start: str, end: str) -> Window:
        """From ISO dates or datetimes; naive values are read as UTC."""
        return cls(parse_utc(start), parse_utc(end))

    @classmethod
    def day(cls, day: str | datetime) -> Window:
        """The UTC day that contains ``day``."""
        moment = parse_utc(day) if isinstance(day, str) else day.astimezone(UTC)
        start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        return cls(start, start + timedelta(days=1))

    def key(self) -> str:
        """Stable text form, used in run keys."""
        return f"{self.start.isoformat()}/{self.end.isoformat()}"


def parse_utc(value: str) -> datetime:
    """Parse an ISO date/datetime (``Z`` accepted); naive values are UTC."""
    moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass(frozen=True)
class ConfigMetadata:
    """What task generation knows about one config: the prompt's whole input."""

    dataset_id: str
    config_name: str
    fields: tuple[FieldInfo, ...]
    sample_rows: tuple[dict[str, Any], ...]
    pretty_name: str | None = None
    summary: str | None = None
    supported_tasks: str | None = None
    data_fields: str | None = None
    task_categories: tuple[str, ...] = field(default_factory=tuple)
    task_ids: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def from_row(cls, row: Any) -> ConfigMetadata:
        """From a row of ``dataset_config`` joined with its ``hub_dataset`` card columns."""
        return cls(
            dataset_id=row.dataset_id,
            config_name=row.config_name,
            fields=tuple(fields_from_json(row.fields or [])),
            sample_rows=tuple(row.sample_rows or []),
            pretty_name=row.pretty_name,
            summary=row.summary,
            supported_tasks=row.supported_tasks,
            data_fields=row.data_fields,
            task_categories=tuple(row.task_categories or ()),
            task_ids=tuple(row.task_ids or ()),
        )

    @property
    def has_description(self) -> bool:
        """Whether the card gave a summary (selects the description-aware prompt)."""
        return bool(self.summary and self.summary.strip())


@dataclass
class StepSummary:
    """Outcome of one step over a set of items."""

    step: str
    counts: Counter[tuple[str, str | None]] = field(default_factory=Counter)
    figures: dict[str, float | int | str] = field(default_factory=dict)

    def add(self, status: str, reason: str | None = None, n: int = 1) -> None:
        """Count ``n`` items that ended in ``status`` (with ``reason``)."""
        self.counts[(status, reason)] += n

    def merge(self, other: StepSummary) -> StepSummary:
        """Add another summary of the same step (e.g. from another chunk) into this one."""
        self.counts.update(other.counts)
        for key, value in other.figures.items():
            mine = self.figures.get(key)
            numeric = isinstance(value, int | float) and isinstance(mine, int | float)
            self.figures[key] = mine + value if numeric else value  # type: ignore[operator]
        return self

    @property
    def total(self) -> int:
        """Items counted."""
        return sum(self.counts.values())

    def by_status(self) -> dict[str, int]:
        """Counts per status, reasons folded."""
        out: Counter[str] = Counter()
        for (status, _), n in self.counts.items():
            out[status] += n
        return dict(out)

    def rows(self) -> list[tuple[str, str, int]]:
        """(status, reason, count) sorted by count, for tables."""
        rows = [(s, r or "", n) for (s, r), n in self.counts.items()]
        return sorted(rows, key=lambda x: (-x[2], x[0], x[1]))

    def to_json(self) -> dict[str, Any]:
        """JSON-safe form (XCom, logs)."""
        return {
            "step": self.step,
            "counts": [[s, r, n] for (s, r), n in sorted(self.counts.items(), key=str)],
            "figures": dict(self.figures),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StepSummary:
        """Inverse of :meth:`to_json`."""
        out = cls(step=data["step"], figures=dict(data.get("figures", {})))
        for status, reason, n in data.get("counts", []):
            out.add(status, reason, n)
        return out
