"""A Hub snapshot folder read into memory: the index, cards, features and sample rows.

Format (the same as ``../shared/hub-snapshot/README.md``)::

    index.jsonl                          one dataset per line: id, created_at, last_modified, sha,
                                         has_card, has_dataset_infos, configs[name, status,
                                         splits{split: rows}, reason]
    datasets/<id>/README.md              the card (YAML front matter + markdown)
    datasets/<id>/dataset_infos.json     per config: features (``datasets`` format), splits...
    datasets/<id>/rows/<config>/<split>.jsonl   up to 100 sample rows

Optional index keys understood here (the project's own snapshot uses them; the shared one has
none): ``gated`` (true, "auto" or "manual"), ``viewer_ready_after`` (an ISO 8601 duration such as
``"P1D"``: the viewer answers "not ready" until created_at + that), ``downloads``, ``likes``.

Also here: the revision a dataset shows at a simulated moment, which makes a replay of time
produce "modified" datasets (see :meth:`DatasetEntry.revision_at`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

try:  # the C loader is ten times faster on the 600 cards of the shared snapshot
    from yaml import CSafeLoader as _YamlLoader
except ImportError:  # pragma: no cover - pyyaml without libyaml
    from yaml import SafeLoader as _YamlLoader

DEFAULT_SNAPSHOT = Path(__file__).resolve().parents[1] / "data" / "snapshot"

# Card YAML keys that the Hub turns into "key:value" tags (old cards say languages/licenses).
_TAG_KEYS = {
    "task_categories": "task_categories",
    "task_ids": "task_ids",
    "language": "language",
    "languages": "language",
    "license": "license",
    "licenses": "license",
    "multilinguality": "multilinguality",
    "size_categories": "size_categories",
    "source_datasets": "source_datasets",
    "annotations_creators": "annotations_creators",
    "language_creators": "language_creators",
}
_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")
_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*(?:/[\w.\-]+)?$")
_SUMMARY = re.compile(r"^#{2,4}\s*Dataset Summary\s*$", re.MULTILINE | re.IGNORECASE)


def parse_time(value: str | datetime) -> datetime:
    """A UTC datetime from an ISO string (``Z`` accepted) or a datetime (naive = UTC)."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def format_time(moment: datetime) -> str:
    """The Hub's date format: ``2024-03-01T09:30:00.000Z``."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_duration(text: str) -> timedelta:
    """A small ISO 8601 duration (``P1D``, ``PT6H``, ``P1DT12H``)."""
    match = _DURATION.match(text.strip())
    if not match or not any(match.groups()):
        raise ValueError(f"not an ISO 8601 duration: {text!r}")
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def git_blob_sha(content: bytes) -> str:
    """The git blob id of a file (what the Hub sends as ETag for a regular file)."""
    return hashlib.sha1(b"blob %d\x00" % len(content) + content).hexdigest()


@dataclass(frozen=True)
class Revision:
    """What a dataset shows at one moment: its commit sha and last-modified date."""

    sha: str
    last_modified: datetime


@dataclass(frozen=True)
class ConfigEntry:
    """One config of the index: its status (ok/partial/skipped/failed), rows per split, reason."""

    name: str
    status: str
    splits: dict[str, int]
    reason: str | None = None


@dataclass
class DatasetEntry:
    """One line of index.jsonl."""

    id: str
    created_at: datetime
    last_modified: datetime
    sha: str
    has_card: bool
    has_dataset_infos: bool
    configs: list[ConfigEntry]
    gated: str | None = None
    viewer_ready_after: timedelta | None = None
    downloads: int = 0
    likes: int = 0
    override: Revision | None = None
    past_shas: set[str] = field(default_factory=set)

    @property
    def initial_sha(self) -> str:
        """The sha of the first revision (derived: the snapshot only has the last one)."""
        return hashlib.sha1(f"{self.id}\x00initial\x00{self.sha}".encode()).hexdigest()

    def exists_at(self, now: datetime) -> bool:
        """A dataset exists from its creation on."""
        return now >= self.created_at

    def revision_at(self, now: datetime) -> Revision:
        """Before ``last_modified`` the first revision (dated created_at), from then on the
        snapshot's; an override set by :meth:`HubEmulator.set_revision` wins."""
        if self.override is not None:
            return self.override
        if self.created_at < self.last_modified and now < self.last_modified:
            return Revision(self.initial_sha, self.created_at)
        return Revision(self.sha, self.last_modified)

    def known_shas(self, now: datetime) -> set[str]:
        """Revisions a client may ask for at ``now`` (past ones stay reachable, as on the Hub)."""
        shas = {self.revision_at(now).sha, *self.past_shas}
        if self.created_at < self.last_modified:
            shas.add(self.initial_sha)
        if now >= self.last_modified:
            shas.add(self.sha)
        return shas

    def viewer_ready_at(self, now: datetime) -> bool:
        """False while the viewer has not processed the dataset yet."""
        return self.viewer_ready_after is None or now >= self.created_at + self.viewer_ready_after


@dataclass(frozen=True)
class Card:
    """A parsed card: YAML data (None when absent or malformed), tags, summary."""

    text: str
    data: dict[str, Any] | None
    yaml_error: str | None
    tags: list[str]
    summary: str | None


def split_front_matter(text: str) -> tuple[str | None, str]:
    """(YAML text or None, markdown body) of a card."""
    if not text.startswith("---"):
        return None, text
    lines = text.split("\n")
    for i in range(1, len(lines)):
        if lines[i].rstrip() == "---":
            return "\n".join(lines[1:i]), "\n".join(lines[i + 1 :])
    return None, text


def _flat_values(value: Any) -> list[str]:
    # Old cards keep per-config dicts of lists (languages: {config: [en]}).
    if value is None:
        return []
    if isinstance(value, dict):
        return [v for item in value.values() for v in _flat_values(item)]
    if isinstance(value, list | tuple):
        return [v for item in value for v in _flat_values(item)]
    return [str(value)]


def card_tags(data: dict[str, Any] | None) -> list[str]:
    """The tags the Hub derives from card YAML, in a stable order, plus the region tag."""
    tags: list[str] = []
    if data:
        for key, tag in _TAG_KEYS.items():
            for value in _flat_values(data.get(key)):
                item = f"{tag}:{value}"
                if value and item not in tags:
                    tags.append(item)
        for value in _flat_values(data.get("tags")):
            if value and value not in tags:
                tags.append(value)
    tags.append("region:us")
    return tags


def card_summary(body: str, limit: int = 300) -> str | None:
    """The first paragraph of the Dataset Summary section, collapsed (the Hub's description)."""
    match = _SUMMARY.search(body)
    if not match:
        return None
    rest = body[match.end() :]
    end = re.search(r"^#", rest, re.MULTILINE)
    section = rest[: end.start()] if end else rest
    text = " ".join(section.split())
    return text[:limit] or None


def _jsonable(value: Any) -> Any:
    # YAML may hold dates; the Hub answers JSON.
    return json.loads(json.dumps(value, default=str))


def parse_card(text: str) -> Card:
    """Parse a card's YAML front matter leniently: a malformed one gives data None and an error."""
    front, body = split_front_matter(text)
    data: dict[str, Any] | None = None
    error: str | None = None
    if front is not None:
        try:
            loaded = yaml.load(front, Loader=_YamlLoader)
        except yaml.YAMLError as exc:
            error = " ".join(str(exc).split())
        else:
            if isinstance(loaded, dict):
                data = _jsonable(loaded)
            elif loaded is not None:
                error = "card metadata is not a mapping"
    return Card(text, data, error, card_tags(data), card_summary(body))


def _entry(raw: dict[str, Any]) -> DatasetEntry:
    ident = str(raw["id"])
    if not _ID.match(ident):
        raise ValueError(f"invalid dataset id in index: {ident!r}")
    gated = raw.get("gated")
    ready_after = raw.get("viewer_ready_after")
    digest = int(hashlib.sha256(ident.encode()).hexdigest()[:12], 16)
    return DatasetEntry(
        id=ident,
        created_at=parse_time(raw["created_at"].replace("Z", "+00:00")),
        last_modified=parse_time(
            (raw.get("last_modified") or raw["created_at"]).replace("Z", "+00:00")
        ),
        sha=str(raw["sha"]),
        has_card=bool(raw.get("has_card", True)),
        has_dataset_infos=bool(raw.get("has_dataset_infos", True)),
        configs=[
            ConfigEntry(
                name=str(c["name"]),
                status=str(c.get("status", "ok")),
                splits={str(k): int(v) for k, v in (c.get("splits") or {}).items()},
                reason=c.get("reason"),
            )
            for c in raw.get("configs") or []
        ],
        gated=("manual" if gated is True else str(gated)) if gated else None,
        viewer_ready_after=parse_duration(ready_after) if ready_after else None,
        # Downloads and likes are unknown in the snapshot: stable made-up figures.
        downloads=int(raw.get("downloads", digest % 50_000)),
        likes=int(raw.get("likes", (digest >> 20) % 300)),
    )


class Snapshot:
    """A snapshot folder: the index in memory, files read on first use and kept."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else DEFAULT_SNAPSHOT
        index = self.root / "index.jsonl"
        if not index.is_file():
            raise FileNotFoundError(f"no index.jsonl in snapshot folder {self.root}")
        self.entries: dict[str, DatasetEntry] = {}
        with index.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    entry = _entry(json.loads(line))
                except (KeyError, ValueError, TypeError) as exc:
                    raise ValueError(f"{index}:{number}: {exc}") from exc
                self.entries[entry.id] = entry
        self._lock = threading.Lock()
        self._cards: dict[str, Card | None] = {}
        self._infos: dict[str, dict[str, Any]] = {}
        self._features: dict[tuple[str, str], dict[str, Any]] = {}
        self._rows = functools.lru_cache(maxsize=1024)(self._read_rows)

    def folder(self, dataset_id: str) -> Path:
        """``datasets/<id>`` of a dataset that is in the index."""
        return self.root / "datasets" / dataset_id

    def file_bytes(self, dataset_id: str, filename: str) -> bytes | None:
        """A repo file served by ``resolve`` (README.md, dataset_infos.json), None if absent."""
        if filename not in self.repo_files(dataset_id):
            return None
        return (self.folder(dataset_id) / filename).read_bytes()

    def repo_files(self, dataset_id: str) -> list[str]:
        """Files of the dataset repo (the siblings)."""
        folder = self.folder(dataset_id)
        return [name for name in ("README.md", "dataset_infos.json") if (folder / name).is_file()]

    def card(self, dataset_id: str) -> Card | None:
        """The parsed card, or None when the dataset has none."""
        with self._lock:
            if dataset_id in self._cards:
                return self._cards[dataset_id]
        path = self.folder(dataset_id) / "README.md"
        card = parse_card(path.read_text(encoding="utf-8-sig")) if path.is_file() else None
        with self._lock:
            self._cards[dataset_id] = card
        return card

    def infos(self, dataset_id: str) -> dict[str, Any]:
        """dataset_infos.json (config -> info), {} when absent or unreadable."""
        with self._lock:
            if dataset_id in self._infos:
                return self._infos[dataset_id]
        path = self.folder(dataset_id) / "dataset_infos.json"
        try:
            infos = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        except json.JSONDecodeError:
            infos = {}
        with self._lock:
            self._infos[dataset_id] = infos if isinstance(infos, dict) else {}
        return self._infos[dataset_id]

    def config_names(self, dataset_id: str) -> list[str]:
        """Configs in index order, then those only dataset_infos.json knows."""
        names = [c.name for c in self.entries[dataset_id].configs]
        return names + [n for n in self.infos(dataset_id) if n not in names]

    def config_entry(self, dataset_id: str, config: str) -> ConfigEntry | None:
        """The index's entry for a config (None for configs only dataset_infos.json knows)."""
        return next((c for c in self.entries[dataset_id].configs if c.name == config), None)

    def split_names(self, dataset_id: str, config: str) -> list[str]:
        """Splits of a config: those of the index, else those of dataset_infos.json."""
        entry = self.config_entry(dataset_id, config)
        if entry is not None and entry.splits:
            return list(entry.splits)
        info = self.infos(dataset_id).get(config) or {}
        return list((info.get("splits") or {}).keys())

    def rows(self, dataset_id: str, config: str, split: str) -> list[dict[str, Any]] | None:
        """Sample rows of a split, None when the snapshot has no rows file for it."""
        if config not in self.config_names(dataset_id) or split not in self.split_names(
            dataset_id, config
        ):
            return None
        return self._rows(dataset_id, config, split)

    def _read_rows(self, dataset_id: str, config: str, split: str) -> list[dict[str, Any]] | None:
        path = self.folder(dataset_id) / "rows" / config / f"{split}.jsonl"
        if not path.is_file():
            return None
        with path.open(encoding="utf-8") as lines:
            return [json.loads(line) for line in lines if line.strip()]

    def features(self, dataset_id: str, config: str) -> dict[str, Any] | None:
        """Features of a config in the installed ``datasets`` serialisation (what the viewer
        sends), inferred from the rows when dataset_infos.json lacks the config."""
        key = (dataset_id, config)
        with self._lock:
            if key in self._features:
                return self._features[key]
        raw = (self.infos(dataset_id).get(config) or {}).get("features")
        rows = next(
            (
                r
                for s in self.split_names(dataset_id, config)
                if (r := self.rows(dataset_id, config, s))
            ),
            None,
        )
        if raw is None:
            if rows is None:
                return None
            features = infer_features(rows)
        else:
            features = normalise_features(raw)
            if rows is not None:
                features = align_features(features, rows)
        with self._lock:
            self._features[key] = features
        return features


def normalise_features(raw: dict[str, Any]) -> dict[str, Any]:
    """Features as the installed ``datasets`` writes them (old ``Sequence`` becomes ``List``...);
    unchanged if ``datasets`` cannot read them."""
    from datasets import Features  # heavy: when first asked

    try:
        return Features.from_dict(raw).to_dict()
    except Exception:  # an exotic old type: serve it as the snapshot has it
        return raw


def align_features(features: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Features that describe the rows: a few old loading scripts yielded other columns than
    their dataset_infos.json declares, and the real viewer's rows always match its features."""
    names = list(dict.fromkeys(k for row in rows for k in row))
    if names == list(features):
        return features
    inferred = infer_features(rows)
    return {name: features.get(name, inferred[name]) for name in names}


def _infer_type(values: list[Any]) -> dict[str, Any]:
    present = [v for v in values if v is not None]
    if not present:
        return {"dtype": "null", "_type": "Value"}
    sample = present[0]
    if isinstance(sample, bool):
        return {"dtype": "bool", "_type": "Value"}
    if isinstance(sample, int):
        if all(isinstance(v, int) for v in present):
            return {"dtype": "int64", "_type": "Value"}
        return {"dtype": "float64", "_type": "Value"}
    if isinstance(sample, float):
        return {"dtype": "float64", "_type": "Value"}
    if isinstance(sample, list):
        return {"feature": _infer_type([x for v in present for x in v]), "_type": "List"}
    if isinstance(sample, dict):
        keys = list(dict.fromkeys(k for v in present for k in v))
        return {k: _infer_type([v.get(k) for v in present]) for k in keys}
    return {"dtype": "string", "_type": "Value"}


def infer_features(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Features inferred from JSON rows, as ``datasets`` does for a JSON file."""
    names = list(dict.fromkeys(k for row in rows for k in row))
    return {name: _infer_type([row.get(name) for row in rows]) for name in names}
