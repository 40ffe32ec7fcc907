"""The task bodies of the DAGs scheduled on the growth DAG's asset: export and selection.

Each takes the version the triggering asset events announce (or the trigger form's), rebuilds
its settings from the Airflow connections and calls the library.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dynosaur.airflow.connections import settings_and_store
from dynosaur.errors import UsageError
from dynosaur.progress import LogProgress

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from dynosaur.settings import Settings

log = logging.getLogger(__name__)


def version_from_events(events: Mapping[Any, Sequence[Any]] | None) -> int | None:
    """The newest version announced by the triggering asset events (None for a manual run).

    Several publishes may be folded into one asset-triggered run; the newest version wins (a
    version includes every earlier one).
    """
    versions = [
        int(extra["version"])
        for asset_events in (events or {}).values()
        for event in asset_events
        if isinstance(extra := getattr(event, "extra", None) or {}, Mapping)
        and extra.get("version") is not None
    ]
    return max(versions) if versions else None


def _version(engine: Any, *candidates: int | None) -> int:
    """The first version given, else the latest published one."""
    from dynosaur.store.batches import latest_version

    for candidate in candidates:
        if candidate is not None:
            return int(candidate)
    latest = latest_version(engine)
    if latest is None:
        raise UsageError("nothing is published yet: there is no version to work on")
    return latest


def export_version(version: int | None, licenses: str | None = None) -> list[dict[str, Any]]:
    """Export what one published version (default: the latest) added, in every configured
    format, into ``<export_dir>/v<N>/`` with the manifest of the files making up version N
    (:mod:`dynosaur.export.delta`); ``licenses`` (``permissive,share-alike``) restricts the
    files to those license classes. Writing the same version again replaces its files."""
    from dynosaur.export.delta import publish_export

    settings, engine = settings_and_store()
    version = _version(engine, version)
    manifest = publish_export(
        settings, engine, version, licenses=licenses or None, progress=LogProgress()
    )
    written = []
    for fmt, entries in manifest["formats"].items():
        latest = entries[-1]
        log.info("exported version %s as %s to %s", version, fmt, latest["path"])
        written.append(
            {
                "format": fmt,
                "path": str(settings.export_root / latest["path"]),
                "version": version,
                "instances": latest["instances"],
                "files": len(entries),
            }
        )
    folder = settings.export_root / f"v{version}"
    if settings.export_push_repo:
        written.append(push_version(settings, engine, version, folder))
    from dynosaur.report import write_report  # the version's growth report beside its files

    report = write_report(engine, folder, version)
    log.info("wrote the growth report of version %s to %s", version, report)
    written.append({"format": "report", "path": str(report), "version": version})
    return written


def push_version(settings: Settings, engine: Engine, version: int, folder: Path) -> dict[str, Any]:
    """Push the whole of version ``version`` to ``DYNOSAUR_EXPORT_PUSH_REPO`` (one commit tagged
    ``v<N>``; nothing when the tag exists): a pushed revision is complete, not a delta."""
    from dynosaur.export import export

    with tempfile.TemporaryDirectory(prefix="dynosaur-push-", dir=folder) as stage:
        result = export(
            settings,
            engine,
            fmt="parquet",
            out=Path(stage),
            version=version,
            progress=LogProgress(),
            push_to_hub=settings.export_push_repo,
        )
    log.info("pushed version %s to %s", version, result.pushed_to)
    return {"format": "hub", "path": result.pushed_to, "version": version}


# The selection form's fields, per method, as the library's keyword arguments.
SELECT_FIELDS: dict[str, dict[str, str]] = {
    "replay": {"replay_tasks": "tasks", "replay_strategy": "strategy"},
    "coreset": {"fraction": "fraction", "count": "count", "per": "per"},
    "learning_percentage": {
        "fraction": "fraction",
        "count": "count",
        "scorer_model": "scorer",
        "epochs": "epochs",
    },
}


def select_for_version(params: Mapping[str, Any], version: int | None) -> dict[str, Any]:
    """Run the selection the trigger form asks for over its version, else ``version`` (the
    announced one), else the latest; returns the stored selection's name and the step's
    summary as JSON. An empty field leaves the choice to the library's default for the method.

    Selections are stored under a name derived from their inputs: running the same request again
    finds the stored one and computes nothing.
    """
    method = params["method"]
    if method not in SELECT_FIELDS:
        raise UsageError(f"unknown selection method {method!r}; use {', '.join(SELECT_FIELDS)}")
    try:
        from dynosaur import select
    except ImportError as exc:  # torch and friends are the `select` extra
        raise UsageError(
            f"selection needs the 'select' extra (pip install 'dynosaur[select]'): {exc}"
        ) from exc
    settings, engine = settings_and_store()
    chosen = _version(engine, params.get("version"), version)
    chosen_method = select.method_for(
        method, **{arg: params.get(field) for field, arg in SELECT_FIELDS[method].items()}
    )
    result = select.select(
        engine,
        settings,
        chosen_method,
        version=chosen,
        name=params.get("name"),
        seed=params.get("seed") or 0,
        progress=LogProgress(),
    )
    summary = result.summary.to_json()
    log.info("selection %s over version %s: %s", result.selection.name, chosen, summary)
    return {"name": result.selection.name, "version": chosen, "summary": summary}


def export_selection(name: str, licenses: str | None = None) -> dict[str, Any]:
    """Export a stored selection as JSONL into ``<export_dir>/selections/`` (only the license
    classes ``licenses`` names, when given)."""
    from dynosaur.export import export

    settings, engine = settings_and_store()
    folder = settings.export_root / "selections"
    folder.mkdir(parents=True, exist_ok=True)
    result = export(
        settings, engine, fmt="jsonl", out=folder, selection=name, licenses=licenses or None
    )
    log.info("exported selection %s to %s", name, result.path)
    return {"name": name, "path": str(result.path), **result.figures}
