"""The dataset card of an export: counts, sources and licenses, gathered while streaming."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import yaml

from dynosaur import __version__
from dynosaur.licenses import LicenseClass, license_class, terms_of

MAX_SOURCES_LISTED = 100


@dataclass
class ExportStats:
    """What an export holds, counted row by row (memory grows with datasets, not rows)."""

    rows: int = 0
    licenses: Counter[str] = field(default_factory=Counter)
    sources: Counter[str] = field(default_factory=Counter)  # taskname -> instances
    websites: dict[str, str] = field(default_factory=dict)  # taskname -> Hub page
    datasets: set[str] = field(default_factory=set)
    tasks: set[int] = field(default_factory=set)
    license_classes: Counter[str] = field(default_factory=Counter)

    def add(self, rows: Sequence[Any]) -> None:
        """Count a batch of rows (with ``license``, ``taskname``, ``website``, ``dataset_id``,
        ``task_id``, ``license_class`` attributes)."""
        self.rows += len(rows)
        for row in rows:
            self.licenses[row.license] += 1
            self.sources[row.taskname] += 1
            self.websites.setdefault(row.taskname, row.website)
            self.datasets.add(row.dataset_id)
            self.tasks.add(row.task_id)
            self.license_classes[row.license_class] += 1

    def summary(self) -> dict[str, Any]:
        """JSON figures: rows, tasks, datasets and the license breakdown."""
        return {
            "instances": self.rows,
            "tasks": len(self.tasks),
            "datasets": len(self.datasets),
            "licenses": dict(self.licenses.most_common()),
            "license_classes": dict(self.license_classes.most_common()),
        }


def _cell(text: str) -> str:
    """Text safe inside a markdown table cell."""
    return (text or "unknown").replace("|", "\\|").replace("\n", " ")


def _size_category(n: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K")):
        if n < limit:
            return label
    return "100K<n<1M" if n < 1_000_000 else "1M<n<10M"


def license_terms(stats: ExportStats, restricted_to: Sequence[str] = ()) -> list[str]:
    """The card's license terms: which classes the export was restricted to (if it was), the
    classes it holds, and what they oblige its users to (:func:`dynosaur.licenses.terms_of`)."""
    held = sorted((LicenseClass(c) for c in stats.license_classes), key=list(LicenseClass).index)
    lines = []
    if restricted_to:
        lines.append(
            "This export holds only instances whose source license is in the license "
            f"class(es) {', '.join(f'`{c}`' for c in restricted_to)}."
        )
    if held:
        lines.append(
            "License classes present: "
            + ", ".join(f"`{c}` ({stats.license_classes[c]:,})" for c in held)
            + "."
        )
    return lines + terms_of(held)


def dataset_card(
    stats: ExportStats,
    *,
    title: str,
    description: str,
    data_glob: str | None = None,
    license_classes: Sequence[str] = (),
    retracted: Sequence[tuple[str, str, int]] = (),
) -> str:
    """README.md for the exported dataset: YAML header (for the Hub) and markdown body.
    ``license_classes``: the classes the export was restricted to (none: every class);
    ``retracted``: (dataset id, reason, from version) of sources withdrawn from this version."""
    single = next(iter(stats.licenses)) if len(stats.licenses) == 1 else None
    header: dict[str, Any] = {
        "pretty_name": title,
        "license": single if single and license_class(single) != LicenseClass.UNKNOWN else "other",
        "language": ["en"],
        "task_categories": ["text-generation"],
        "tags": ["instruction-tuning", "dynosaur"],
        "size_categories": [_size_category(stats.rows)],
    }
    if data_glob:
        header["configs"] = [
            {"config_name": "default", "data_files": [{"split": "train", "path": data_glob}]}
        ]
    share = (lambda n: f"{100 * n / stats.rows:.1f}%") if stats.rows else (lambda n: "-")
    lines = [
        "---",
        yaml.safe_dump(header, sort_keys=False, allow_unicode=True).strip(),
        "---",
        "",
        f"# {title}",
        "",
        f"This is {description}, grown by Dynosaur {__version__} from "
        "datasets published on the Hugging Face Hub: an LLM read each dataset's metadata and "
        "proposed tasks (an instruction, input fields and an output field); the inputs and "
        "outputs of every instance come from the dataset's own rows. Exported "
        f"{datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}.",
        "",
        "## Counts",
        "",
        "| instances | tasks | source datasets |",
        "|---:|---:|---:|",
        f"| {stats.rows:,} | {len(stats.tasks):,} | {len(stats.datasets):,} |",
        "",
        *_retracted_section(retracted),
        "## Fields",
        "",
        "`instruction`, `input`, `output`, `license` (the source dataset's license), `website` "
        "(its Hub page), `taskname` (the dataset id, plus `-config` for datasets with several "
        "configurations).",
        "",
        "## License terms",
        "",
        *license_terms(stats, license_classes),
        "",
        "## License breakdown",
        "",
        "Every instance keeps the license of the dataset it comes from"
        + (
            f" (here `{header['license']}` throughout)."
            if header["license"] != "other"
            else "; the export as a whole is under mixed licenses (`license: other`)."
        )
        + " Check each source's terms.",
        "",
        "| license | instances | share |",
        "|---|---:|---:|",
        *(f"| {_cell(lic)} | {n:,} | {share(n)} |" for lic, n in stats.licenses.most_common()),
        "",
        "## Sources",
        "",
        "| task name | Hub page | instances |",
        "|---|---|---:|",
    ]
    listed = stats.sources.most_common(MAX_SOURCES_LISTED)
    lines += [
        f"| {_cell(name)} | {_cell(stats.websites.get(name, ''))} | {n:,} |" for name, n in listed
    ]
    if len(stats.sources) > len(listed):
        rest = len(stats.sources) - len(listed)
        lines.append(f"| ... and {rest:,} more | | {stats.rows - sum(n for _, n in listed):,} |")
    return "\n".join(lines) + "\n"


def _retracted_section(retracted: Sequence[tuple[str, str, int]]) -> list[str]:
    """The card's list of sources withdrawn from this version (none: no section)."""
    if not retracted:
        return []
    rows = [f"| {d} | {reason} | {version} |" for d, reason, version in retracted]
    return [
        "## Retracted sources",
        "",
        "Instances of these source datasets were withdrawn from this version on (the source was "
        "deleted, made private, gated or relicensed, or retracted by hand); earlier versions "
        "keep them.",
        "",
        "| source dataset | reason | withdrawn from version |",
        "|---|---|---:|",
        *rows,
        "",
    ]
