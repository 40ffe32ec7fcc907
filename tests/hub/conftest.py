"""Fixtures of the Hub ingestion tests: settings pointed at an emulator, and throwaway snapshot
folders (the emulator's format) for hostile datasets."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dynosaur.emulators.hub import HubEmulator
from dynosaur.emulators.snapshot import DEFAULT_SNAPSHOT
from dynosaur.settings import Settings

STRING = {"dtype": "string", "_type": "Value"}
CREATED = "2024-05-01T10:00:00.000Z"
AFTER_ALL = datetime(2024, 6, 1, tzinfo=UTC)


def own_index() -> list[dict[str, Any]]:
    """The project's own snapshot index (what the emulator serves by default)."""
    lines = (DEFAULT_SNAPSHOT / "index.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def created_on(day: str) -> set[str]:
    """Ids of the own snapshot's datasets created on a UTC day (YYYY-MM-DD)."""
    return {e["id"] for e in own_index() if e["created_at"].startswith(day)}


def hub_settings(settings: Settings, hub: HubEmulator, **overrides: Any) -> Settings:
    """``settings`` pointed at ``hub``, retrying fast (tests never wait for real backoffs);
    validated again, so overrides are parsed as from the environment."""
    values: dict[str, Any] = {
        "hub_endpoint": hub.url,
        "viewer_url": hub.url,
        "hub_backoff_s": 0.001,
        "hub_backoff_max_s": 0.01,
        "hub_defer_s": 0.0,
        **overrides,
    }
    return Settings(**{**settings.model_dump(), **values})


def rows_of(engine: Engine, query: str, **params: Any) -> list[Any]:
    """All rows of a query on the store."""
    with engine.connect() as conn:
        return list(conn.execute(sa.text(query), params))


class SnapshotWriter:
    """Writes datasets in the emulator's snapshot format into a folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.entries: list[dict[str, Any]] = []

    def add(
        self,
        dataset_id: str,
        *,
        card: bytes | str | None = "---\nlicense: mit\nlanguage: [en]\n---\n# A dataset\n",
        features: dict[str, Any] | None = None,
        rows: list[dict[str, Any]] | bytes | None = None,
        config: str = "default",
        split: str = "train",
        created_at: str = CREATED,
        **extra: Any,
    ) -> None:
        """One dataset with one config and one split (rows as dicts, or raw JSONL bytes)."""
        folder = self.root / "datasets" / dataset_id
        folder.mkdir(parents=True, exist_ok=True)
        if card is not None:
            data = card.encode("utf-8") if isinstance(card, str) else card
            (folder / "README.md").write_bytes(data)
        if rows is None:
            rows = [{"question": f"q{i}", "answer": f"a{i}"} for i in range(3)]
        if features is None:
            features = {"question": STRING, "answer": STRING}
        infos = {config: {"features": features, "splits": {split: {"name": split}}}}
        (folder / "dataset_infos.json").write_text(json.dumps(infos), encoding="utf-8")
        rows_dir = folder / "rows" / config
        rows_dir.mkdir(parents=True, exist_ok=True)
        if isinstance(rows, bytes):
            (rows_dir / f"{split}.jsonl").write_bytes(rows)
            count = rows.count(b"\n")
        else:
            lines = "".join(json.dumps(r) + "\n" for r in rows)
            (rows_dir / f"{split}.jsonl").write_text(lines, encoding="utf-8")
            count = len(rows)
        self.entries.append(
            {
                "id": dataset_id,
                "created_at": created_at,
                "last_modified": created_at,
                "sha": f"{abs(hash(dataset_id)):040x}"[:40],
                "has_card": card is not None,
                "has_dataset_infos": True,
                "configs": [{"name": config, "status": "ok", "splits": {split: count}}],
                **extra,
            }
        )

    def write(self) -> Path:
        """Write index.jsonl; returns the snapshot folder."""
        lines = "".join(json.dumps(e) + "\n" for e in self.entries)
        (self.root / "index.jsonl").write_text(lines, encoding="utf-8")
        return self.root


@pytest.fixture
def snapshot_writer(tmp_path: Path) -> SnapshotWriter:
    """An empty snapshot folder to fill."""
    return SnapshotWriter(tmp_path / "snapshot")


@pytest.fixture
def own_hub() -> Iterator[HubEmulator]:
    """The emulator serving the project's own snapshot, its clock after every creation."""
    with HubEmulator(now=AFTER_ALL) as hub:
        yield hub
