"""What a step reports when it finishes: counts by (status, reason) plus a few figures.

The CLI prints it as the step's summary table; Airflow tasks return ``to_json()`` through XCom
(small, JSON, no secrets).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


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
