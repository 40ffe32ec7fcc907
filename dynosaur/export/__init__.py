"""Export a version of the collection, or a stored selection, as JSONL, Parquet or a `datasets`
Dataset with a dataset card, and optionally push it to the Hub.

Streaming end to end: rows come from a server-side cursor in batches (:mod:`dynosaur.store.exports`)
and go straight to the file, so the memory an export needs does not depend on how many instances
it holds. Every row has the original Dynosaur's fields (:data:`FIELDS`): its ``taskname`` is the
instance's ``source`` column, written under the original's key.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sqlalchemy.engine import Engine

from dynosaur.errors import UsageError
from dynosaur.export.card import ExportStats, dataset_card
from dynosaur.export.writers import write_dataset, write_jsonl, write_parquet
from dynosaur.licenses import LicenseClass, parse_classes
from dynosaur.progress import NullProgress, Progress
from dynosaur.settings import Settings
from dynosaur.store.exports import (
    FIELDS,
    RowSource,
    iter_batches,
    selection_source,
    version_source,
)

Format = Literal["jsonl", "parquet", "hf"]
FORMATS: tuple[str, ...] = ("jsonl", "parquet", "hf")
_SUFFIX = {"jsonl": ".jsonl", "parquet": ".parquet"}

log = logging.getLogger(__name__)

__all__ = [
    "FIELDS",
    "FORMATS",
    "ExportResult",
    "RowSource",
    "export",
    "license_option",
    "selection_source",
    "version_source",
]


@dataclass
class ExportResult:
    """What an export wrote, and where."""

    path: Path
    format: str
    source: str
    version: int | None
    selection: str | None
    figures: dict[str, Any] = field(default_factory=dict)
    pushed_to: str | None = None


def _target(out: Path | None, fmt: str, source: RowSource) -> Path:
    """The file or folder to write: ``out`` itself, or one named after the source inside it
    (``out`` None: the current folder)."""
    if out is None:
        return Path.cwd() / f"{source.name}{_SUFFIX.get(fmt, '')}"
    if fmt == "hf":
        if out.is_file():
            raise UsageError(f"{out} is a file; the hf format writes a folder")
        if out.is_dir() and any(out.iterdir()) and not (out / "dataset_info.json").exists():
            raise UsageError(f"{out} is a non-empty folder that is not a saved dataset")
        return out
    if out.is_dir() or str(out).endswith(("/", "\\")):
        return out / f"{source.name}{_SUFFIX[fmt]}"
    return out


def license_option(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """License classes from ``--licenses permissive,share-alike`` (or a list), most permissive
    first; empty = every class."""
    if value is None or value == "" or (not isinstance(value, str) and not list(value)):
        return ()
    try:
        chosen = parse_classes(value)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    return tuple(c.value for c in LicenseClass if c in chosen)


def export(
    settings: Settings,
    engine: Engine,
    *,
    fmt: str,
    out: Path | None = None,
    version: int | None = None,
    selection: str | None = None,
    push_to_hub: str | None = None,
    progress: Progress | None = None,
    batch_rows: int | None = None,
    licenses: str | Sequence[str] | None = None,
    delta: bool = False,
) -> ExportResult:
    """Export version ``version`` (default latest) or the selection ``selection`` to ``out``.

    ``licenses``: only instances whose license class is one of these (``permissive,share-alike``);
    the card states the terms. ``delta``: only the rows version ``version`` added.
    Reads the rows once: the figures are counted while they stream.
    """
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if version is not None and selection is not None:
        raise UsageError("give a version or a selection, not both")
    if delta and selection is not None:
        raise UsageError("a delta is the rows one version added; selections have none")
    classes = license_option(licenses)
    source = (
        selection_source(engine, selection, license_classes=classes)
        if selection is not None
        else version_source(engine, version, delta=delta, license_classes=classes)
    )
    target = _target(Path(out).expanduser() if out is not None else None, fmt, source)
    target.parent.mkdir(parents=True, exist_ok=True)
    progress = progress or NullProgress()
    progress.start(source.expected, f"export {source.description}")
    stats = ExportStats()

    def rows() -> Iterator[Sequence[Any]]:
        for batch in iter_batches(engine, source, batch_rows or 10_000):
            stats.add(batch)
            progress.advance(len(batch))
            yield batch

    title = (
        f"Dynosaur selection {source.selection}"
        if source.selection
        else f"Dynosaur instruction collection, version {source.version}"
        + (" (the rows it added)" if source.delta else "")
    )
    if classes:
        title += f", {' + '.join(classes)} licenses"
    with tempfile.TemporaryDirectory(prefix="dynosaur-stage-", dir=target.parent) as stage:
        staged = Path(stage)
        if fmt == "jsonl":
            write_jsonl(rows(), target)
            data_file = target
        else:
            data_file = target if fmt == "parquet" else staged / f"{source.name}.parquet"
            write_parquet(rows(), data_file)
        progress.finish()
        retracted = _retracted(engine, source)
        if retracted:
            log.info("version %s leaves out %d retracted sources", source.version, len(retracted))
        card = dataset_card(
            stats,
            title=title,
            description=source.description,
            license_classes=classes,
            retracted=retracted,
        )
        if fmt == "hf":
            write_dataset(data_file, target, card)
        else:
            target.with_name(f"{target.stem}.README.md").write_text(card, encoding="utf-8")
        result = ExportResult(
            path=target,
            format=fmt,
            source=source.description,
            version=source.version,
            selection=source.selection,
            figures={**stats.summary(), "retracted_sources": len(retracted)},
        )
        if push_to_hub:
            result.pushed_to = push(
                settings, push_to_hub, data_file, stats, title, source, retracted
            )
    return result


def _retracted(engine: Engine, source: RowSource) -> list[tuple[str, str, int]]:
    """Sources withdrawn from the exported version (none for a selection)."""
    if source.version is None or source.selection is not None:
        return []
    from dynosaur.store.retractions import retractions

    return [
        (r.dataset_id, r.reason, r.from_version)
        for r in retractions(engine, up_to_version=source.version)
    ]


def push_revision(source: RowSource) -> str:
    """The tag a pushed version (``v3``), license subset (``v3-permissive``) or selection
    (``selection-NAME``) gets on the Hub."""
    tag = f"selection-{source.selection}" if source.selection else f"v{source.version}"
    return "-".join((tag, *source.license_classes))


def push(
    settings: Settings,
    repo_id: str,
    data_file: Path,
    stats: ExportStats,
    title: str,
    source: RowSource,
    retracted: list[tuple[str, str, int]] | None = None,
) -> str:
    """Upload the data file and its card to the Hub dataset repo ``repo_id`` as one commit on
    ``main``, tagged ``v{N}`` (a selection: ``selection-NAME``); returns ``URL@tag``.

    Each version replaces the previous one's files (``data/train.*`` holds the whole version), so
    every tag is a complete, loadable revision. Pushing a version whose tag exists is a no-op: no
    upload, no commit.
    """
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi

    token = settings.hub_token.get_secret_value() if settings.hub_token else None
    if token is None:
        raise UsageError("pushing to the Hub needs a token: set DYNOSAUR_HUB_TOKEN")
    suffix = data_file.suffix
    card = dataset_card(
        stats,
        title=title,
        description=source.description,
        data_glob=f"data/*{suffix}",
        license_classes=source.license_classes,
        retracted=retracted or (),
    )
    api = HfApi(endpoint=settings.hub_endpoint, token=token)
    url = str(api.create_repo(repo_id, repo_type="dataset", exist_ok=True))
    tag = push_revision(source)
    refs = api.list_repo_refs(repo_id, repo_type="dataset")
    if any(ref.name == tag for ref in refs.tags):
        log.info("%s already has %s: nothing pushed", repo_id, tag)
        return f"{url}@{tag}"
    operations: list[CommitOperationAdd | CommitOperationDelete] = []
    if refs.branches:
        operations.append(CommitOperationDelete("data/", is_folder=True))
    operations += [
        CommitOperationAdd(f"data/train{suffix}", str(data_file)),
        CommitOperationAdd("README.md", card.encode("utf-8")),
    ]
    commit = api.create_commit(
        repo_id=repo_id,
        repo_type="dataset",
        operations=operations,
        commit_message=f"Dynosaur: {source.description}",
    )
    api.create_tag(repo_id, tag=tag, revision=commit.oid, repo_type="dataset")
    return f"{url}@{tag}"
