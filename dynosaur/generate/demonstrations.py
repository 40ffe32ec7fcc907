"""The few-shot demonstrations: fixture datasets of our own snapshot, looked up by name, plus the
tasks we wrote for them (``dynosaur/data/demonstrations.json``), and which sample rows each shows
(``rows``: positions in the split; one row whose passage the other rows would only repeat is
enough to show the format, and keeps every prompt shorter).

A fixture is read the way collect reads a Hub dataset (card summary, features, first rows of a
split, ClassLabel integers turned into label names), so a demonstration is shown exactly like a
target config. Nothing is picked by position in a list: the JSON names each dataset (and
optionally its config and split).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml  # no stubs in the environment

from dynosaur.model import ConfigMetadata, FieldInfo

if TYPE_CHECKING:
    from dynosaur.generate.prompts import PromptKind

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
DEMONSTRATIONS_FILE = DATA_DIR / "demonstrations.json"
SNAPSHOT_DIR = DATA_DIR / "snapshot"

_HEADING = re.compile(r"^(#{1,6})\s*(.+?)\s*#*\s*$")


@dataclass(frozen=True)
class Demonstration:
    """A fixture config, the tasks we wrote for it, and which of its sample rows are shown
    (positions in the split; None: the first two distinct rows, as for a target)."""

    metadata: ConfigMetadata
    tasks: tuple[dict[str, Any], ...]
    rows: tuple[int, ...] | None = None


def load_demonstrations(
    demonstrations_file: Path | None = None, snapshot_dir: Path | None = None
) -> dict[PromptKind, tuple[Demonstration, ...]]:
    """Every prompt kind's demonstrations, read from the JSON file and the snapshot it names."""
    from dynosaur.generate.prompts import PromptKind

    path = demonstrations_file or DEMONSTRATIONS_FILE
    snapshot = snapshot_dir or SNAPSHOT_DIR
    spec = json.loads(path.read_text(encoding="utf-8"))
    out: dict[PromptKind, tuple[Demonstration, ...]] = {}
    for kind in PromptKind:
        entries = spec.get(kind.value) or []
        out[kind] = tuple(
            Demonstration(
                metadata=fixture_metadata(
                    snapshot, entry["dataset"], entry.get("config"), entry.get("split")
                ),
                tasks=tuple(entry["tasks"]),
                rows=tuple(entry["rows"]) if entry.get("rows") is not None else None,
            )
            for entry in entries
        )
    return out


def fixture_metadata(
    snapshot: Path, dataset: str, config: str | None = None, split: str | None = None
) -> ConfigMetadata:
    """A snapshot dataset's config as task generation sees it (the first config when unnamed)."""
    folder = snapshot / "datasets" / dataset
    if not folder.is_dir():
        raise FileNotFoundError(f"demonstration dataset {dataset!r} is not in {snapshot}")
    infos = json.loads((folder / "dataset_infos.json").read_text(encoding="utf-8"))
    config = config or next(iter(infos))
    features: Mapping[str, Any] = infos[config].get("features") or {}
    fields = tuple(_field(name, feature) for name, feature in features.items())
    rows_dir = folder / "rows" / config
    if split is None:
        available = sorted(p.stem for p in rows_dir.glob("*.jsonl"))
        split = "train" if "train" in available else available[0]
    rows = [
        _label_names(json.loads(line), fields)
        for line in (rows_dir / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    card = _read_card(folder / "README.md")
    front = card[0]
    return ConfigMetadata(
        dataset_id=dataset,
        config_name=config,
        fields=fields,
        sample_rows=tuple(rows),
        pretty_name=front.get("pretty_name"),
        summary=card_section(card[1], "Dataset Summary"),
        supported_tasks=card_section(card[1], "Supported Tasks and Leaderboards"),
        data_fields=card_section(card[1], "Data Fields"),
        task_categories=tuple(front.get("task_categories") or ()),
        task_ids=tuple(front.get("task_ids") or ()),
    )


def _read_card(path: Path) -> tuple[dict[str, Any], str]:
    if not path.is_file():
        return {}, ""
    text = path.read_text(encoding="utf-8")
    if text.startswith("---"):
        _, header, body = text.split("---", 2)
        data = yaml.safe_load(header) or {}
        return (data if isinstance(data, dict) else {}), body
    return {}, text


def card_section(markdown: str, title: str) -> str | None:
    """The text under a card heading (any level) up to the next heading of the same or a higher
    level, or None when there is no such heading or it is empty."""
    lines = markdown.splitlines()
    for i, line in enumerate(lines):
        match = _HEADING.match(line)
        if match and match.group(2).strip().lower() == title.lower():
            level = len(match.group(1))
            body: list[str] = []
            for later in lines[i + 1 :]:
                heading = _HEADING.match(later)
                if heading and len(heading.group(1)) <= level:
                    break
                body.append(later)
            text = "\n".join(body).strip()
            return text or None
    return None


def _field(name: str, feature: Any) -> FieldInfo:
    if isinstance(feature, dict) and feature.get("_type") == "ClassLabel":
        return FieldInfo(name, "class_label", tuple(feature.get("names") or ()))
    if isinstance(feature, dict) and feature.get("_type") == "Value":
        return FieldInfo(name, str(feature.get("dtype", "string")))
    if isinstance(feature, dict) and feature.get("_type") in ("Sequence", "List", "LargeList"):
        inner = _field(name, feature.get("feature"))
        return FieldInfo(name, f"list<{inner.type}>", inner.labels)
    if isinstance(feature, list):
        inner = _field(name, feature[0]) if feature else FieldInfo(name, "string")
        return FieldInfo(name, f"list<{inner.type}>", inner.labels)
    return FieldInfo(name, "dict")


def _label_names(row: dict[str, Any], fields: tuple[FieldInfo, ...]) -> dict[str, Any]:
    """ClassLabel integers replaced by their names (as collect stores sample rows)."""
    out = dict(row)
    for info in fields:
        if not info.labels or info.name not in out:
            continue
        value = out[info.name]
        if isinstance(value, int) and 0 <= value < len(info.labels):
            out[info.name] = info.labels[value]
        elif isinstance(value, list):
            out[info.name] = [
                info.labels[v] if isinstance(v, int) and 0 <= v < len(info.labels) else v
                for v in value
            ]
    return out
