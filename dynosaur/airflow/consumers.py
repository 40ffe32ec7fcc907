"""The task bodies of the DAGs scheduled on the growth DAG's asset: export and selection.

Each takes the version the triggering asset events announce (or the trigger form's), rebuilds
its settings from the Airflow connections and calls the library.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from dynosaur.airflow.connections import settings_and_store
from dynosaur.errors import UsageError
from dynosaur.progress import LogProgress

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


def export_version(version: int | None) -> list[dict[str, Any]]:
    """Export one published version (default: the latest) in every configured format into
    ``<export_dir>/v<N>/``; writing the same version again replaces its files."""
    from dynosaur.export import FORMATS, export

    settings, engine = settings_and_store()
    version = _version(engine, version)
    unknown = sorted(set(settings.export_formats) - set(FORMATS))
    if unknown:
        raise UsageError(
            f"DYNOSAUR_EXPORT_FORMATS has unknown format(s) {', '.join(unknown)}; "
            f"choose from {', '.join(FORMATS)}"
        )
    folder = settings.export_root / f"v{version}"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    # The first format's file is pushed when a repo is set (one commit per version, tag vN).
    push_with = settings.export_formats[0] if settings.export_push_repo else None
    for fmt in settings.export_formats:
        out = folder / "hf" if fmt == "hf" else folder  # a folder: files named after the version
        result = export(
            settings,
            engine,
            fmt=fmt,
            out=out,
            version=version,
            progress=LogProgress(),
            push_to_hub=settings.export_push_repo if fmt == push_with else None,
        )
        if result.pushed_to:
            log.info("pushed version %s to %s", version, result.pushed_to)
        log.info("exported version %s as %s to %s", version, fmt, result.path)
        written.append(
            {"format": fmt, "path": str(result.path), "version": version, **result.figures}
        )
    return written


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


def export_selection(name: str) -> dict[str, Any]:
    """Export a stored selection as JSONL into ``<export_dir>/selections/``."""
    from dynosaur.export import export

    settings, engine = settings_and_store()
    folder = settings.export_root / "selections"
    folder.mkdir(parents=True, exist_ok=True)
    result = export(settings, engine, fmt="jsonl", out=folder, selection=name)
    log.info("exported selection %s to %s", name, result.path)
    return {"name": name, "path": str(result.path), **result.figures}
