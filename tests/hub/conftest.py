"""Fixtures of the Hub ingestion tests: settings pointed at an emulator, store helpers, and
throwaway snapshot folders (the emulator's format) for hostile datasets. The snapshot facts and
the ``own_hub`` emulator are the emulator tests' (:mod:`tests.emulators.conftest`)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dynosaur.emulators.hub import HubEmulator
from dynosaur.settings import Settings
from dynosaur.store.datasets import NewRevision, insert_revisions
from tests.emulators.conftest import own_hub  # noqa: F401  (a fixture, shared)

STRING = {"dtype": "string", "_type": "Value"}
CREATED = "2024-05-01T10:00:00.000Z"


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


def store_revision(engine: Engine, hub: HubEmulator, dataset_id: str, sha: str) -> int:
    """A ``hub_dataset`` row for a revision the Hub's listing never showed (an explicit id
    that was deleted meanwhile, a hostile id); its row id."""
    revision = NewRevision(
        dataset_id=dataset_id,
        sha=sha,
        created_at=None,
        last_modified=None,
        discovered_via="explicit",
        hub_url=f"{hub.url}/datasets/{dataset_id}",
    )
    [row_id] = insert_revisions(engine, [revision])
    assert row_id is not None
    return row_id


def dataset_state(engine: Engine) -> dict[str, tuple[Any, ...]]:
    """Every ``hub_dataset`` row by its row id: what a later run must leave untouched."""
    rows = rows_of(
        engine,
        "SELECT id, dataset_id, sha, status, reason, attempts, collected_at, updated_at "
        "FROM hub_dataset ORDER BY id",
    )
    return {r[0]: tuple(r[1:]) for r in rows}


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
            rows = [
                {"question": f"What is the name of item {i}?", "answer": f"It is called {i}."}
                for i in range(3)
            ]
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
                "sha": hashlib.sha1(dataset_id.encode()).hexdigest(),
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
