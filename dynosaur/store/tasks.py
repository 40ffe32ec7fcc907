"""The task repository: what the curate step reads and writes about configs and tasks.

Claims of generated configs into a batch, the configs' fields and sample rows, their proposed
tasks, the store-wide de-duplication lookups (fingerprints and LSH band keys of valid tasks) and
the decisions written back. Functions taking a ``Connection`` run in the caller's transaction, so
that a chunk's reads and writes commit together (see :mod:`dynosaur.curate.step`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from psycopg2.extras import execute_values  # type: ignore[import-untyped]
from sqlalchemy.engine import Connection, Engine

from dynosaur.model import Task
from dynosaur.store.copy import copy_rows

# Serialises the chunks of concurrent curate runs (pg_advisory_xact_lock key).
CURATE_LOCK = 0x44594E02
# Band keys probed per query: large ANY() arrays stay under a few MB each.
_PROBE_CHUNK = 20_000


@dataclass(frozen=True)
class ConfigRow:
    """A config as curation reads it: its stored fields and sample rows, and its dataset's facts."""

    id: int
    dataset_id: str
    config_name: str
    fields: list[dict[str, Any]]  # dataset_config.fields (JSON)
    sample_rows: Any  # dataset_config.sample_rows (JSON: a list of row objects when collected)
    licenses: list[str]
    hub_url: str
    n_configs: int  # configs of the same dataset revision (the source name depends on it)


@dataclass
class Decision:
    """The outcome for one task, written back to its row by :func:`write_decisions`."""

    status: str
    reason: str | None = None
    message: str | None = None
    labels: list[str] | None = None
    instance_instruction: str | None = None
    fingerprint: str | None = None
    notes: list[str] = field(default_factory=list)


def lock_curation(conn: Connection) -> None:
    """Take the curate lock for the rest of ``conn``'s transaction (chunks run one at a time, so
    the store-wide duplicate checks see every valid task committed before them)."""
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": CURATE_LOCK})


def claim_configs(engine: Engine, batch_id: int) -> list[int]:
    """Claim every ``generated`` config that no batch holds yet into this batch (of the
    datasets it owns, or that no run owns); their ids.

    ``WHERE batch_id IS NULL`` makes a claim happen once: two runs never take the same config.
    """
    with engine.begin() as conn:
        return list(
            conn.execute(
                sa.text(
                    "UPDATE dataset_config SET status = 'curated', batch_id = :b, "
                    "updated_at = now() WHERE status = 'generated' AND batch_id IS NULL "
                    # only the batch's own datasets (runs in parallel keep their days apart)
                    "AND hub_dataset_id IN (SELECT id FROM hub_dataset "
                    "WHERE batch_id = :b OR batch_id IS NULL) RETURNING id"
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


def load_configs(conn: Connection, config_ids: Sequence[int]) -> list[ConfigRow]:
    """The configs' fields, sample rows and source facts (licenses, Hub page, sibling count)."""
    rows = conn.execute(
        sa.text(
            """
            SELECT c.id, d.dataset_id, c.config_name, c.fields, c.sample_rows, d.licenses,
                   d.hub_url,
                   (SELECT count(*) FROM dataset_config s
                     WHERE s.hub_dataset_id = c.hub_dataset_id) AS n_configs
            FROM dataset_config c JOIN hub_dataset d ON d.id = c.hub_dataset_id
            WHERE c.id = ANY(:ids)
            """
        ),
        {"ids": list(config_ids)},
    ).all()
    return [
        ConfigRow(
            id=r.id,
            dataset_id=r.dataset_id,
            config_name=r.config_name,
            fields=r.fields or [],
            sample_rows=r.sample_rows,
            licenses=list(r.licenses or []),
            hub_url=r.hub_url,
            n_configs=int(r.n_configs),
        )
        for r in rows
    ]


def load_proposals(conn: Connection, config_ids: Sequence[int]) -> dict[int, list[Task]]:
    """Proposed tasks per config id, as stored, in generation order then answer order."""
    rows = conn.execute(
        sa.text(
            "SELECT id, config_id, instruction, input_fields, output_field, problem, "
            "extra_output_fields FROM task "
            "WHERE config_id = ANY(:ids) AND status = 'proposed' "
            "ORDER BY config_id, generation_id, position"
        ),
        {"ids": list(config_ids)},
    ).all()
    out: dict[int, list[Task]] = defaultdict(list)
    for r in rows:
        inputs = tuple(r.input_fields) if r.input_fields is not None else None
        out[r.config_id].append(
            Task(
                id=r.id,
                instruction=r.instruction,
                input_fields=inputs,
                output_field=r.output_field,
                problem=r.problem,
                extra_output_fields=tuple(r.extra_output_fields or ()),
            )
        )
    return out


def fingerprint_key(fingerprint: str) -> int:
    """The compact lookup key of a hex fingerprint: its first 64 bits as a signed bigint, what
    ``task.fingerprint_key`` holds (migration 0090)."""
    return int.from_bytes(bytes.fromhex(fingerprint[:16]), "big", signed=True)


def stored_fingerprints(conn: Connection, fingerprints: Sequence[str]) -> dict[str, int]:
    """Fingerprint -> id of the valid tasks in the store that have one of ``fingerprints``.

    Probes ``task_fingerprint_key_valid_idx`` with 8-byte keys (its cost follows the batch, not
    the store); the whole fingerprint of the few rows found is compared, so a 64-bit collision
    never counts as a duplicate.
    """
    wanted = set(fingerprints)
    if not wanted:
        return {}
    rows = conn.execute(
        sa.text(
            "SELECT fingerprint, id FROM task WHERE status = 'valid' AND fingerprint_key = ANY(:k)"
        ),
        {"k": sorted({fingerprint_key(fp) for fp in wanted})},
    ).all()
    return {fp: task_id for fp, task_id in rows if fp in wanted}


def stored_band_keys(conn: Connection, keys: Sequence[int]) -> dict[int, list[tuple[int, str]]]:
    """Band key -> [(task id, instruction)] of indexed valid tasks sharing one of ``keys``.

    Two index-driven queries whose cost follows the batch, not the store: the band keys probe
    ``task_lsh_key_idx`` (index-only), then the few matching tasks are read by primary key.
    """
    matches: list[tuple[int, int]] = []
    unique = sorted(set(keys))
    for start in range(0, len(unique), _PROBE_CHUNK):
        matches += [
            (key, task_id)
            for key, task_id in conn.execute(
                sa.text("SELECT band_key, task_id FROM task_lsh WHERE band_key = ANY(:k)"),
                {"k": unique[start : start + _PROBE_CHUNK]},
            ).all()
        ]
    task_ids = sorted({task_id for _, task_id in matches})
    instructions: dict[int, str | None] = (
        {
            task_id: instruction
            for task_id, instruction in conn.execute(
                sa.text("SELECT id, instruction FROM task WHERE id = ANY(:ids)"), {"ids": task_ids}
            ).all()
        }
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


def write_band_keys(conn: Connection, keys: Iterable[tuple[int, Sequence[int]]]) -> int:
    """Index valid tasks for near-duplicate probes: (task id, its LSH band keys in band order)."""
    return copy_rows(
        conn,
        "task_lsh",
        ("task_id", "band", "band_key"),
        ((task_id, band, key) for task_id, band_keys in keys for band, key in enumerate(band_keys)),
    )
