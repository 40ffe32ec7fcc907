"""What a publish exports: the rows the new version added (a delta) and a manifest of the files
that make up version N.

Version N of the collection is the rows of versions 1..N, so the export folder keeps one delta per
version and per format, written once, and ``v<N>/manifest.json`` lists the delta files of
versions 1..N in order (with their row counts): a publish costs the new batch, whatever the
number of versions before it. A manifest is built from the previous version's; a delta that is
missing (a version published before deltas existed, or a lost file) is written on the way.

    <export root>/v<N>/dynosaur-v<N>-delta.jsonl         the rows version N added
    <export root>/v<N>/dynosaur-v<N>-delta.README.md     its card
    <export root>/v<N>/manifest.json                     the files making up version N

With license classes the files and the manifest carry the classes in their names
(``dynosaur-v3-delta-permissive.jsonl``, ``manifest-permissive.json``).

    import datasets, json
    manifest = json.load(open("exports/v3/manifest.json"))
    files = [f"exports/{f['path']}" for f in manifest["formats"]["jsonl"]]
    version_3 = datasets.load_dataset("json", data_files=files, split="train")
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from dynosaur.errors import UsageError
from dynosaur.export import FORMATS, ExportResult, export, license_option
from dynosaur.progress import Progress
from dynosaur.settings import Settings

MANIFEST_VERSION = 1
_SUFFIX = {"jsonl": ".jsonl", "parquet": ".parquet", "hf": ""}


def _suffix(classes: Sequence[str]) -> str:
    return f"-{'+'.join(classes)}" if classes else ""


def delta_path(root: Path, version: int, fmt: str, classes: Sequence[str] = ()) -> Path:
    """Where the delta of ``version`` in ``fmt`` lives under the export root."""
    return root / f"v{version}" / f"dynosaur-v{version}-delta{_suffix(classes)}{_SUFFIX[fmt]}"


def manifest_path(root: Path, version: int, classes: Sequence[str] = ()) -> Path:
    """Where the manifest of ``version`` lives under the export root."""
    return root / f"v{version}" / f"manifest{_suffix(classes)}.json"


def _read_manifest(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("manifest") == MANIFEST_VERSION else None


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _earlier_entries(
    root: Path, version: int, fmt: str, classes: Sequence[str]
) -> list[dict[str, Any]] | None:
    """The entries of versions 1..N-1 from N-1's manifest, None when it is missing or one of
    its files is gone."""
    if version == 1:
        return []
    previous = _read_manifest(manifest_path(root, version - 1, classes))
    entries = (previous or {}).get("formats", {}).get(fmt)
    if not isinstance(entries, list) or [e.get("version") for e in entries] != list(
        range(1, version)
    ):
        return None
    if not all((root / e["path"]).exists() for e in entries):
        return None
    return entries


def publish_export(
    settings: Settings,
    engine: Engine,
    version: int,
    *,
    formats: Sequence[str] | None = None,
    licenses: str | Sequence[str] | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Write version ``version``'s delta in every format (default: the configured ones) and its
    manifest; returns the manifest. Writing the same version again replaces its files."""
    formats = list(formats or settings.export_formats)
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise UsageError(
            f"unknown export format(s) {', '.join(unknown)}; choose from {', '.join(FORMATS)}"
        )
    classes = license_option(licenses)
    root = settings.export_root
    listed: dict[str, list[dict[str, Any]]] = {}
    for fmt in formats:
        entries = _earlier_entries(root, version, fmt, classes)
        if entries is None:  # no usable previous manifest: check every earlier delta
            entries = []
            for earlier in range(1, version):
                path = delta_path(root, earlier, fmt, classes)
                if path.exists():
                    entries.append({"version": earlier, "path": _relative(root, path)})
                else:
                    done = _write_delta(settings, engine, earlier, fmt, classes, None)
                    entries.append(_entry(root, earlier, done))
        done = _write_delta(settings, engine, version, fmt, classes, progress)
        listed[fmt] = [*entries, _entry(root, version, done)]
    manifest = {
        "manifest": MANIFEST_VERSION,
        "version": version,
        "license_classes": list(classes),
        "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "formats": listed,
    }
    path = manifest_path(root, version, classes)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_json(path, manifest)
    return manifest


def _relative(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def _entry(root: Path, version: int, result: ExportResult) -> dict[str, Any]:
    return {
        "version": version,
        "path": _relative(root, result.path),
        "instances": result.figures.get("instances"),
    }


def _write_delta(
    settings: Settings,
    engine: Engine,
    version: int,
    fmt: str,
    classes: Sequence[str],
    progress: Progress | None,
) -> ExportResult:
    path = delta_path(settings.export_root, version, fmt, classes)
    path.parent.mkdir(parents=True, exist_ok=True)
    return export(
        settings,
        engine,
        fmt=fmt,
        out=path,
        version=version,
        delta=True,
        licenses=list(classes),
        progress=progress,
    )
