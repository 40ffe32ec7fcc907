"""The curate step: claim generated configs into a batch, filter and de-duplicate their tasks,
build instances, and load everything in one transaction per chunk of configs.

Resumable and idempotent: a config is claimed once (``UPDATE ... WHERE batch_id IS NULL``, so two
runs never take the same config); a chunk's task decisions, instances and index rows commit
together, so a crash loses at most the chunk in progress and a re-run continues with the tasks
that are still ``proposed``. Chunks of concurrent runs are serialised by an advisory lock, so the
store-wide duplicate checks always see every valid task committed before them.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from psycopg2.extras import execute_values
from sqlalchemy.engine import Connection, Engine

from dynosaur.curate import dedup
from dynosaur.curate.filters import Rejection, filter_config_tasks
from dynosaur.curate.instances import Construction, build_instances, clean_text
from dynosaur.curate.load import copy_lines, copy_rows, escape
from dynosaur.model import FieldInfo, StepSummary, Task, fields_from_json
from dynosaur.progress import NullProgress, Progress
from dynosaur.reasons import Reason
from dynosaur.settings import Settings
from dynosaur.store.batches import BatchStateError, get_batch

log = logging.getLogger(__name__)

CURATE_LOCK = 0x44594E02
CONFIGS_PER_CHUNK = 50
INSTANCE_COLUMNS = (
    "task_id",
    "batch_id",
    "row_index",
    "instruction",
    "input",
    "output",
    "license",
    "website",
    "taskname",
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
    website: str
    taskname: str


@dataclass
class Decision:
    """The outcome for one task, written back to its row."""

    status: str
    reason: str | None = None
    message: str | None = None
    labels: list[str] | None = None
    instance_instruction: str | None = None
    fingerprint: str | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class _Candidate:
    task: Task
    config: ConfigSource
    fingerprint: str
    keys: list[int]
    shingles: frozenset[str]


def taskname(dataset_id: str, config_name: str, n_configs: int) -> str:
    """The original's task name: the dataset id, plus ``-config`` when it has several configs."""
    return f"{dataset_id}-{config_name}" if n_configs > 1 else dataset_id


def claim_configs(engine: Engine, batch_id: int) -> list[int]:
    """Claim every ``generated`` config that no batch holds yet into this batch; their ids."""
    with engine.begin() as conn:
        return list(
            conn.execute(
                sa.text(
                    "UPDATE dataset_config SET status = 'curated', batch_id = :b, "
                    "updated_at = now() WHERE status = 'generated' AND batch_id IS NULL "
                    "RETURNING id"
                ),
                {"b": batch_id},
            ).scalars()
        )


def configs_to_curate(engine: Engine, batch_id: int) -> list[int]:
    """Configs of the batch that still have proposed tasks, in id order."""
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.text(
                    "SELECT c.id FROM dataset_config c WHERE c.batch_id = :b AND EXISTS "
                    "(SELECT 1 FROM task t WHERE t.config_id = c.id AND t.status = 'proposed') "
                    "ORDER BY c.id"
                ),
                {"b": batch_id},
            ).scalars()
        )


def curate(
    settings: Settings, engine: Engine, batch_id: int, *, progress: Progress | None = None
) -> StepSummary:
    """Curate every generated config into batch ``batch_id``; counts by (status, reason)."""
    progress = progress or NullProgress()
    summary = StepSummary("curate", figures={"batch_id": batch_id})
    batch = get_batch(engine, batch_id)
    if batch.finished:
        summary.figures["note"] = f"batch {batch_id} is already {batch.status}"
        return summary
    if batch.status != "building":
        raise BatchStateError(f"batch {batch_id} is {batch.status}: open it again to rebuild it")
    claimed = claim_configs(engine, batch_id)
    todo = configs_to_curate(engine, batch_id)
    summary.figures.update(configs_claimed=len(claimed), configs=len(todo), instances=0)
    progress.start(len(todo), "curate")
    for start in range(0, len(todo), CONFIGS_PER_CHUNK):
        chunk = todo[start : start + CONFIGS_PER_CHUNK]
        with engine.begin() as conn:
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": CURATE_LOCK})
            part = curate_configs(conn, batch_id, chunk)
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


def curate_configs(conn: Connection, batch_id: int, config_ids: Sequence[int]) -> StepSummary:
    """Decide every proposed task of these configs and load the instances, in ``conn``'s
    transaction (the caller holds the curate lock)."""
    summary = StepSummary("curate", figures={"instances": 0})
    configs = load_configs(conn, config_ids)
    tasks = load_proposals(conn, config_ids)
    decisions: dict[int, Decision] = {}
    candidates: list[_Candidate] = []
    for config_id, proposals in tasks.items():
        config = configs[config_id]
        rejected = filter_config_tasks(proposals, config.fields.keys())
        for task in proposals:
            if task.id in rejected:
                decisions[task.id] = _rejected(rejected[task.id])
                continue
            assert task.instruction is not None and task.output_field is not None
            inputs = task.input_fields or ()
            names = (config.dataset_id, config.config_name)
            scope = dedup.scope_key(*names, inputs, task.output_field)
            shingles = dedup.shingles(task.instruction)
            candidates.append(
                _Candidate(
                    task,
                    config,
                    dedup.fingerprint(*names, task.instruction, inputs, task.output_field),
                    dedup.band_keys(scope, dedup.minhash(shingles)),
                    shingles,
                )
            )
    stored = stored_fingerprints(conn, [c.fingerprint for c in candidates])
    near = NearDuplicateIndex(stored_band_keys(conn, [k for c in candidates for k in c.keys]))
    built: list[tuple[_Candidate, Construction]] = []
    for cand in candidates:
        decision, construction = _decide(cand, stored, near)
        decisions[cand.task.id] = decision
        if construction is not None:
            stored[cand.fingerprint] = cand.task.id
            near.add(cand.task.id, cand.keys, cand.shingles)
            built.append((cand, construction))
    write_decisions(conn, batch_id, decisions)
    lines = instance_lines(batch_id, ((c.task.id, con, c.config) for c, con in built))
    n_instances = copy_lines(conn, "instance", INSTANCE_COLUMNS, lines)
    copy_rows(
        conn,
        "task_lsh",
        ("task_id", "band", "band_key"),
        ((c.task.id, band, key) for c, _ in built for band, key in enumerate(c.keys)),
    )
    for decision in decisions.values():
        summary.add(decision.status, decision.reason)
    summary.figures["instances"] = n_instances
    return summary


def _rejected(rejection: Rejection, fingerprint: str | None = None) -> Decision:
    return Decision("rejected", rejection.reason.value, rejection.message, fingerprint=fingerprint)


def _decide(
    cand: _Candidate, stored: dict[str, int], near: NearDuplicateIndex
) -> tuple[Decision, Construction | None]:
    """Store-wide de-duplication, then instance construction, for one filtered task."""
    fp = cand.fingerprint
    if fp in stored:
        rejection = Rejection(
            Reason.DUPLICATE_IN_STORE, f"identical to task {stored[fp]} already in the store"
        )
        return _rejected(rejection, fp), None
    match = near.find(cand.keys, cand.shingles)
    if match is not None:
        other, similarity = match
        rejection = Rejection(
            Reason.NEAR_DUPLICATE_IN_STORE,
            f"instruction {similarity:.2f} similar to task {other} on the same config and fields "
            f"(threshold {dedup.NEAR_THRESHOLD})",
        )
        return _rejected(rejection, fp), None
    task = cand.task
    assert task.instruction is not None and task.output_field is not None
    construction = build_instances(
        task.instruction,
        task.input_fields or (),
        task.output_field,
        cand.config.fields,
        cand.config.rows,
    )
    if construction.rejection is not None:
        return _rejected(construction.rejection, fp), None
    decision = Decision(
        "valid",
        labels=list(construction.labels) if construction.labels is not None else None,
        instance_instruction=construction.instruction,
        fingerprint=fp,
        notes=sorted(construction.notes),
    )
    return decision, construction


class NearDuplicateIndex:
    """LSH band key -> (task id, shingles) of valid tasks: the store's candidates for a chunk plus
    the tasks accepted so far in it. ``find`` verifies candidates with the exact Jaccard."""

    def __init__(self, stored: dict[int, list[tuple[int, str]]]) -> None:
        self._by_key: dict[int, list[tuple[int, frozenset[str]]]] = defaultdict(list)
        cache: dict[int, frozenset[str]] = {}
        for key, entries in stored.items():
            for task_id, instruction in entries:
                if task_id not in cache:
                    cache[task_id] = dedup.shingles(instruction)
                self._by_key[key].append((task_id, cache[task_id]))

    def add(self, task_id: int, keys: Sequence[int], shingles: frozenset[str]) -> None:
        """Index a task accepted in this chunk."""
        for key in keys:
            self._by_key[key].append((task_id, shingles))

    def find(self, keys: Sequence[int], shingles: frozenset[str]) -> tuple[int, float] | None:
        """The most similar indexed task at or above the threshold, with its similarity."""
        best: tuple[int, float] | None = None
        for key in keys:
            for task_id, other in self._by_key.get(key, ()):
                similarity = dedup.jaccard(shingles, other)
                if similarity >= dedup.NEAR_THRESHOLD and (best is None or similarity > best[1]):
                    best = (task_id, similarity)
        return best


def load_configs(conn: Connection, config_ids: Sequence[int]) -> dict[int, ConfigSource]:
    """The configs' fields, sample rows and source facts (license, Hub page, task name)."""
    rows = conn.execute(
        sa.text(
            """
            SELECT c.id, c.config_name, c.fields, c.sample_rows, d.dataset_id, d.licenses,
                   d.hub_url,
                   (SELECT count(*) FROM dataset_config s
                     WHERE s.hub_dataset_id = c.hub_dataset_id) AS n_configs
            FROM dataset_config c JOIN hub_dataset d ON d.id = c.hub_dataset_id
            WHERE c.id = ANY(:ids)
            """
        ),
        {"ids": list(config_ids)},
    ).all()
    out: dict[int, ConfigSource] = {}
    for r in rows:
        sample = r.sample_rows if isinstance(r.sample_rows, list) else []
        infos = fields_from_json(r.fields or [])
        fields = {f.name: f for f in infos}
        if not fields and sample and isinstance(sample[0], dict):
            fields = {name: FieldInfo(name, "string") for name in sample[0]}
        out[r.id] = ConfigSource(
            id=r.id,
            dataset_id=r.dataset_id,
            config_name=r.config_name,
            fields=fields,
            rows=sample,
            license=clean_text(", ".join(r.licenses)) or "unknown",
            website=clean_text(r.hub_url),
            taskname=clean_text(taskname(r.dataset_id, r.config_name, r.n_configs)),
        )
    return out


def load_proposals(conn: Connection, config_ids: Sequence[int]) -> dict[int, list[Task]]:
    """Proposed tasks per config, in generation order then answer order."""
    rows = conn.execute(
        sa.text(
            "SELECT id, config_id, instruction, input_fields, output_field FROM task "
            "WHERE config_id = ANY(:ids) AND status = 'proposed' "
            "ORDER BY config_id, generation_id, position"
        ),
        {"ids": list(config_ids)},
    ).all()
    out: dict[int, list[Task]] = defaultdict(list)
    for r in rows:
        inputs = (
            tuple(dict.fromkeys(f.strip() for f in r.input_fields))  # each field once, in order
            if r.input_fields is not None
            else None
        )
        output = r.output_field.strip() if r.output_field is not None else None
        out[r.config_id].append(
            Task(id=r.id, instruction=r.instruction, input_fields=inputs, output_field=output)
        )
    return out


def stored_fingerprints(conn: Connection, fingerprints: Sequence[str]) -> dict[str, int]:
    """Fingerprint -> id of the valid tasks in the store that have one of ``fingerprints``."""
    if not fingerprints:
        return {}
    rows = conn.execute(
        sa.text(
            "SELECT fingerprint, id FROM task WHERE status = 'valid' AND fingerprint = ANY(:f)"
        ),
        {"f": list(set(fingerprints))},
    ).all()
    return {fp: task_id for fp, task_id in rows}


def stored_band_keys(conn: Connection, keys: Sequence[int]) -> dict[int, list[tuple[int, str]]]:
    """Band key -> [(task id, instruction)] of indexed valid tasks sharing one of ``keys``.

    Two index-driven queries whose cost follows the batch, not the store: the band keys probe
    ``task_lsh_key_idx`` (index-only), then the few matching tasks are read by primary key.
    """
    matches: list[tuple[int, int]] = []
    unique = sorted(set(keys))
    for start in range(0, len(unique), 20_000):
        matches += conn.execute(
            sa.text("SELECT band_key, task_id FROM task_lsh WHERE band_key = ANY(:k)"),
            {"k": unique[start : start + 20_000]},
        ).all()
    task_ids = sorted({task_id for _, task_id in matches})
    instructions: dict[int, str | None] = (
        dict(
            conn.execute(
                sa.text("SELECT id, instruction FROM task WHERE id = ANY(:ids)"), {"ids": task_ids}
            ).all()
        )
        if task_ids
        else {}
    )
    out: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for key, task_id in matches:
        out[key].append((task_id, instructions.get(task_id) or ""))
    return out


def write_decisions(conn: Connection, batch_id: int, decisions: dict[int, Decision]) -> None:
    """Write every task's status, reason, labels, final instruction and fingerprint."""
    if not decisions:
        return
    values = [
        (
            task_id,
            d.status,
            d.reason,
            d.message,
            d.labels,
            d.instance_instruction,
            d.fingerprint,
            d.notes,
        )
        for task_id, d in decisions.items()
    ]
    raw: Any = conn.connection.dbapi_connection  # psycopg2's connection
    with raw.cursor() as cursor:
        execute_values(
            cursor,
            "UPDATE task AS t SET status = v.status, reason = v.reason, message = v.message, "
            "labels = v.labels, instance_instruction = v.instance_instruction, "
            f"fingerprint = v.fingerprint, notes = v.notes, batch_id = {int(batch_id)}, "
            "curated_at = now() FROM (VALUES %s) AS v(id, status, reason, message, labels, "
            "instance_instruction, fingerprint, notes) WHERE t.id = v.id",
            values,
            template="(%s::bigint, %s, %s, %s, %s::text[], %s, %s, %s::text[])",
            page_size=1000,
        )


def instance_lines(
    batch_id: int, built: Iterable[tuple[int, Construction, ConfigSource]]
) -> Iterator[str]:
    """COPY text lines of the instances of (task id, construction, config) triples; what all
    instances of a task share is escaped once."""
    for task_id, construction, config in built:
        head = f"{task_id}\t{batch_id}\t"
        mid = f"\t{escape(construction.instruction)}\t"
        tail = f"\t{escape(config.license)}\t{escape(config.website)}\t{escape(config.taskname)}\n"
        for inst in construction.instances:
            yield f"{head}{inst.row_index}{mid}{escape(inst.input)}\t{escape(inst.output)}{tail}"
