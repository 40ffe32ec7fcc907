"""The curate step: claim generated configs into a batch, filter and de-duplicate their tasks,
build instances, and load everything in one transaction per chunk of configs.

Resumable and idempotent: a config is claimed once (two runs never take the same config); a
chunk's task decisions, instances and index rows commit together, so a crash loses at most the
chunk in progress and a re-run continues with the tasks that are still ``proposed``. Chunks of
concurrent runs are serialised by a lock, so the store-wide duplicate checks always see every
valid task committed before them. Every statement is in :mod:`dynosaur.store.tasks` and
:mod:`dynosaur.store.instances`; this module decides.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache, partial
from typing import Any

from sqlalchemy.engine import Connection, Engine

from dynosaur import decontam
from dynosaur.curate import dedup, leakage, suspicious
from dynosaur.curate.filters import (
    MultipleOutputs,
    Rejection,
    filter_config_tasks,
    normalise_fields,
)
from dynosaur.curate.instances import Construction, build_instances, clean_text
from dynosaur.licenses import dataset_license_class
from dynosaur.model import FieldInfo, StepSummary, Task, fields_from_json
from dynosaur.progress import NullProgress, Progress
from dynosaur.reasons import Reason
from dynosaur.settings import Settings
from dynosaur.store import instances as instance_store
from dynosaur.store import tasks as task_store
from dynosaur.store.batches import BatchStateError, get_batch
from dynosaur.store.instances import TaskInstances
from dynosaur.store.tasks import ConfigRow, Decision

log = logging.getLogger(__name__)

CONFIGS_PER_CHUNK = 50


@dataclass(frozen=True)
class CurateRules:
    """The curate step's settings: the leak share above which a task is ``answer_in_input``;
    whether a near-duplicate (same config and fields, instruction Jaccard >= 0.8) is rejected
    or, as the original (which removed only identical tasks) would have it, kept and flagged;
    and whether a task naming several output fields keeps the first (the original) or is
    rejected."""

    answer_in_input_share: float = leakage.DEFAULT_SHARE
    leakage_filter: bool = True
    reject_near_duplicates: bool = False
    multiple_output_fields: MultipleOutputs = "first"

    @classmethod
    def from_settings(cls, settings: Settings) -> CurateRules:
        """The rules that ``settings`` state."""
        return cls(
            answer_in_input_share=settings.answer_in_input_share,
            leakage_filter=settings.leakage_filter,
            reject_near_duplicates=settings.near_duplicates == "reject",
            multiple_output_fields=settings.multiple_output_fields,
        )


@dataclass(frozen=True)
class ConfigSource:
    """What curation needs to know about one claimed config."""

    id: int
    dataset_id: str
    config_name: str
    fields: dict[str, FieldInfo]
    rows: list[Any]
    license: str
    license_class: str
    website: str
    source: str


@dataclass
class FilteredTask:
    """A task that passed its config's filters, with the keys the store-wide de-duplication
    compares: its exact fingerprint, its LSH band keys and its instruction's word bigrams."""

    id: int
    task: Task
    config: ConfigSource
    fingerprint: str
    keys: list[int]
    shingles: frozenset[str]


def source_name(dataset_id: str, config_name: str, n_configs: int) -> str:
    """An instance's source: the dataset id, plus ``-config`` when it has several configs (the
    original Dynosaur's ``taskname``)."""
    return f"{dataset_id}-{config_name}" if n_configs > 1 else dataset_id


def config_source(row: ConfigRow) -> ConfigSource:
    """A stored config as curation uses it: fields by name (from the first row when the features
    are unknown), sample rows, and the cleaned license, Hub page and source name."""
    sample = row.sample_rows if isinstance(row.sample_rows, list) else []
    fields = {f.name: f for f in fields_from_json(row.fields)}
    if not fields and sample and isinstance(sample[0], dict):
        fields = {name: FieldInfo(name, "string") for name in sample[0]}
    return ConfigSource(
        id=row.id,
        dataset_id=row.dataset_id,
        config_name=row.config_name,
        fields=fields,
        rows=sample,
        license=clean_text(", ".join(row.licenses)) or "unknown",
        license_class=dataset_license_class(row.licenses).value,
        website=clean_text(row.hub_url),
        source=clean_text(source_name(row.dataset_id, row.config_name, row.n_configs)),
    )


def curate(
    settings: Settings,
    engine: Engine,
    batch_id: int,
    *,
    progress: Progress | None = None,
    configs_per_chunk: int = CONFIGS_PER_CHUNK,
) -> StepSummary:
    """Curate every generated config into batch ``batch_id``; counts by (status, reason).

    ``configs_per_chunk`` configs are decided and loaded per transaction.
    """
    progress = progress or NullProgress()
    summary = StepSummary("curate", figures={"batch_id": batch_id})
    batch = get_batch(engine, batch_id)
    if batch.finished:
        summary.figures["note"] = f"batch {batch_id} is already {batch.status}"
        return summary
    if batch.status != "building":
        raise BatchStateError(f"batch {batch_id} is {batch.status}: open it again to rebuild it")
    claimed = task_store.claim_configs(engine, batch_id)
    todo = task_store.configs_to_curate(engine, batch_id)
    rules = CurateRules.from_settings(settings)
    summary.figures.update(configs_claimed=len(claimed), configs=len(todo), instances=0)
    progress.start(len(todo), "curate")
    for start in range(0, len(todo), configs_per_chunk):
        chunk = todo[start : start + configs_per_chunk]
        with engine.begin() as conn:
            task_store.lock_curation(conn)
            part = curate_configs(conn, batch_id, chunk, rules)
        summary.merge(part)
        status = summary.by_status()
        progress.advance(
            len(chunk),
            valid=status.get("valid", 0),
            rejected=status.get("rejected", 0),
            instances=summary.figures["instances"],
        )
    progress.finish()
    log.info("curated batch %s: %s", batch_id, summary.to_json())
    return summary


def curate_configs(
    conn: Connection, batch_id: int, config_ids: list[int], rules: CurateRules | None = None
) -> StepSummary:
    """Decide every proposed task of these configs and load the instances, in ``conn``'s
    transaction (the caller holds the curate lock).

    Figures besides the counts by (status, reason): ``instances``, ``near_duplicates`` (tasks
    flagged, or rejected, as near-duplicates) and ``instances_answer_in_input`` (single instances
    dropped because their output is the whole value of an input field)."""
    rules = rules or CurateRules()
    summary = StepSummary(
        "curate",
        figures={"instances": 0, "near_duplicates": 0, "instances_answer_in_input": 0},
    )
    configs = {row.id: config_source(row) for row in task_store.load_configs(conn, config_ids)}
    decisions: dict[int, Decision] = {}
    candidates: list[FilteredTask] = []
    for config_id, stored in task_store.load_proposals(conn, config_ids).items():
        config = configs[config_id]
        proposals = [normalise_fields(task) for task in stored]
        rows_text = cache(partial(suspicious.source_text, config.rows))
        content: list[Callable[[Task], Rejection | None]] = [
            partial(suspicious.check_task, source=rows_text)
        ]
        if rules.leakage_filter:
            content.append(
                partial(
                    leakage.check_task,
                    fields=config.fields,
                    rows=config.rows,
                    share=rules.answer_in_input_share,
                )
            )
        rejected = filter_config_tasks(
            proposals, config.fields.keys(), content, rules.multiple_output_fields
        )
        for task in proposals:
            assert task.id is not None  # read from the store
            if task.id in rejected:
                decisions[task.id] = _rejected(rejected[task.id])
            else:
                candidates.append(_filtered(task.id, task, config))
    stored_fps = task_store.stored_fingerprints(conn, [c.fingerprint for c in candidates])
    near = dedup.NearDuplicateIndex(
        task_store.stored_band_keys(conn, [k for c in candidates for k in c.keys])
    )
    built: list[tuple[FilteredTask, Construction]] = []
    for cand in candidates:
        decision, construction, dropped = _decide(cand, stored_fps, near, rules)
        decisions[cand.id] = decision
        if Reason.NEAR_DUPLICATE_IN_STORE.value in (decision.reason, *decision.notes):
            summary.figures["near_duplicates"] = int(summary.figures["near_duplicates"]) + 1
        summary.figures["instances_answer_in_input"] = (
            int(summary.figures["instances_answer_in_input"]) + dropped
        )
        if construction is not None:
            stored_fps[cand.fingerprint] = cand.id
            near.add(cand.id, cand.keys, cand.shingles)
            built.append((cand, construction))
    built = decontam.screen(conn, batch_id, built, decisions)  # benchmark_overlap
    task_store.write_decisions(conn, batch_id, decisions)
    n_instances = instance_store.copy_instances(
        conn, batch_id, (_instances(cand, con) for cand, con in built)
    )
    task_store.write_band_keys(conn, ((cand.id, cand.keys) for cand, _ in built))
    for decision in decisions.values():
        summary.add(decision.status, decision.reason)
    summary.figures["instances"] = n_instances
    return summary


def _filtered(task_id: int, task: Task, config: ConfigSource) -> FilteredTask:
    assert task.instruction is not None and task.output_field is not None  # the filters passed
    inputs = task.input_fields or ()
    names = (config.dataset_id, config.config_name)
    scope = dedup.scope_key(*names, inputs, task.output_field)
    shingles = dedup.shingles(task.instruction)
    return FilteredTask(
        task_id,
        task,
        config,
        dedup.fingerprint(*names, task.instruction, inputs, task.output_field),
        dedup.band_keys(scope, dedup.minhash(shingles)),
        shingles,
    )


def _instances(cand: FilteredTask, construction: Construction) -> TaskInstances:
    config = cand.config
    return TaskInstances(
        task_id=cand.id,
        instruction=construction.instruction,
        license=config.license,
        license_class=config.license_class,
        website=config.website,
        source=config.source,
        rows=construction.instances,
    )


def _rejected(rejection: Rejection, fingerprint: str | None = None) -> Decision:
    return Decision("rejected", rejection.reason.value, rejection.message, fingerprint=fingerprint)


def _decide(
    cand: FilteredTask, stored: dict[str, int], near: dedup.NearDuplicateIndex, rules: CurateRules
) -> tuple[Decision, Construction | None, int]:
    """Store-wide de-duplication, then instance construction, for one filtered task; also the
    number of instances dropped because they leak their answer."""
    fp = cand.fingerprint
    if fp in stored:
        rejection = Rejection(
            Reason.DUPLICATE_IN_STORE, f"identical to task {stored[fp]} already in the store"
        )
        return _rejected(rejection, fp), None, 0
    notes: set[str] = set()
    message: str | None = None
    match = near.find(cand.keys, cand.shingles)
    if match is not None:
        other, similarity = match
        message = (
            f"instruction {similarity:.2f} similar to task {other} on the same config and fields "
            f"(threshold {dedup.NEAR_THRESHOLD})"
        )
        if rules.reject_near_duplicates:
            return _rejected(Rejection(Reason.NEAR_DUPLICATE_IN_STORE, message), fp), None, 0
        notes.add(Reason.NEAR_DUPLICATE_IN_STORE.value)
    task = cand.task
    assert task.instruction is not None and task.output_field is not None
    inputs = task.input_fields or ()
    config = cand.config
    construction = build_instances(
        task.instruction, inputs, task.output_field, config.fields, config.rows
    )
    if construction.rejection is not None:
        return _rejected(construction.rejection, fp), None, 0
    dropped = 0
    if rules.leakage_filter:
        construction, dropped = _drop_leaks(construction, task, config)
        if construction.rejection is not None:
            return _rejected(construction.rejection, fp), None, 0
    if dropped:
        notes.add(Reason.ANSWER_IN_INPUT.value)
    decision = Decision(
        "valid",
        message=message,
        labels=list(construction.labels) if construction.labels is not None else None,
        instance_instruction=construction.instruction,
        fingerprint=fp,
        notes=sorted(construction.notes | notes),
    )
    return decision, construction, dropped


def _drop_leaks(
    construction: Construction, task: Task, config: ConfigSource
) -> tuple[Construction, int]:
    """The construction without the instances whose output is the whole value of an input field
    in their row, and how many were dropped (a task left with none is ``answer_in_input``)."""
    assert task.output_field is not None
    leaks = leakage.leaking_rows(
        config.rows, task.input_fields or (), task.output_field, config.fields
    )
    if not leaks:
        return construction, 0
    kept = tuple(i for i in construction.instances if i.row_index not in leaks)
    dropped = len(construction.instances) - len(kept)
    if kept:
        return replace(construction, instances=kept), dropped
    rejection = Rejection(
        Reason.ANSWER_IN_INPUT,
        f"every instance's output is the whole value of an input field ({dropped} dropped)",
    )
    return replace(construction, instances=(), rejection=rejection), dropped
