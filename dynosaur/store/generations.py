"""The store side of task generation: configs in, ``generation`` and ``task`` rows out, config
states.

A config waits for generation as ``collected`` (never sent) or ``deferred`` (a run left it for a
later one: budget reached, API key rejected or no quota, the endpoint unreachable; with its
reason). A generation is ``pending`` while the run that planned it has not answered it (an
unusable answer leaves it ``pending``, counted in ``unusable_answers``), ``deferred`` when that
run left it for a later one (after transient failures: ``attempts`` counted, due again at
``next_attempt_at``), then ``succeeded`` or ``failed``.

Every write here is idempotent: a generation that already succeeded is left as it is, task rows
are keyed by (generation, position), and a config's state is recomputed from its generations
under a row lock, so concurrent workers and re-runs converge on the same rows.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from dynosaur.model import ConfigMetadata, Task
from dynosaur.reasons import Reason

# Config states that wait for task generation.
WAITING = ("collected", "deferred")


def queue(engine: Engine, *, limit: int | None = None, run_key: str | None = None) -> list[int]:
    """Ids of the configs waiting for task generation and due, oldest first.

    A config deferred after transient failures is due once its generations' next attempt time
    has come; those deferred by the run ``run_key`` itself are due at once (re-running a run
    after the service recovered completes it)."""
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.text(
                    "SELECT c.id FROM dataset_config c WHERE c.status = ANY(:waiting) "
                    "AND NOT EXISTS (SELECT 1 FROM generation g WHERE g.config_id = c.id "
                    "AND g.status = 'deferred' AND g.next_attempt_at > now() "
                    "AND g.run_key IS DISTINCT FROM :rk) ORDER BY c.id LIMIT :limit"
                ),
                {"waiting": list(WAITING), "limit": limit, "rk": run_key},
            ).scalars()
        )


def load_metadata(engine: Engine, config_ids: Sequence[int]) -> dict[int, ConfigMetadata]:
    """Prompt input of the given configs that still wait for generation (one query)."""
    if not config_ids:
        return {}
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT c.id, c.config_name, c.fields, c.sample_rows, d.dataset_id, "
                "d.pretty_name, d.summary, d.supported_tasks, d.data_fields, d.task_categories, "
                "d.task_ids FROM dataset_config c JOIN hub_dataset d ON d.id = c.hub_dataset_id "
                "WHERE c.id = ANY(:ids) AND c.status = ANY(:waiting)"
            ),
            {"ids": list(config_ids), "waiting": list(WAITING)},
        )
        return {row.id: ConfigMetadata.from_row(row) for row in rows}


def config_states(engine: Engine, config_ids: Sequence[int]) -> dict[int, tuple[str, str | None]]:
    """(status, reason) of each config."""
    if not config_ids:
        return {}
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT id, status, reason FROM dataset_config WHERE id = ANY(:ids)"),
            {"ids": list(config_ids)},
        )
        return {row.id: (row.status, row.reason) for row in rows}


@dataclass(frozen=True)
class PlannedGeneration:
    """One prompt a run plans to send for a config."""

    config_id: int
    prompt_kind: str
    request_hash: str
    prompt_version: str


@dataclass(frozen=True)
class GenerationRow:
    """A generation row as the step needs it."""

    id: int
    config_id: int
    prompt_kind: str
    status: str
    llm_call_id: int | None
    attempts: int = 0  # runs whose calls failed transiently
    unusable_answers: int = 0  # answers received that could not be used


_GENERATION = "id, config_id, prompt_kind, status, llm_call_id, attempts, unusable_answers"


def _generation(r: Any) -> GenerationRow:
    return GenerationRow(
        r.id, r.config_id, r.prompt_kind, r.status, r.llm_call_id, r.attempts, r.unusable_answers
    )


def upsert_generations(
    engine: Engine, planned: Sequence[PlannedGeneration], run_key: str
) -> list[GenerationRow]:
    """One generation row per planned (config, prompt kind); rows that did not succeed yet become
    ``pending`` again with the current request (a new prompt version) and this run's key."""
    if not planned:
        return []
    payload = json.dumps(
        [[p.config_id, p.prompt_kind, p.request_hash, p.prompt_version] for p in planned]
    )
    with engine.begin() as conn:
        rows = list(
            conn.execute(
                sa.text(
                    "INSERT INTO generation (config_id, prompt_kind, request_hash, "
                    "prompt_version, run_key) SELECT (x->>0)::bigint, x->>1, x->>2, x->>3, :rk "
                    "FROM jsonb_array_elements(CAST(:items AS jsonb)) AS x "
                    "ON CONFLICT (config_id, prompt_kind) DO UPDATE SET "
                    "request_hash = excluded.request_hash, "
                    "prompt_version = excluded.prompt_version, run_key = excluded.run_key, "
                    "status = 'pending', reason = NULL, message = NULL, updated_at = now() "
                    "WHERE generation.status <> 'succeeded' "
                    f"RETURNING {_GENERATION}"
                ),
                {"items": payload, "rk": run_key},
            )
        )
        found = {(r.config_id, r.prompt_kind) for r in rows}
        missing = [
            [p.config_id, p.prompt_kind]
            for p in planned
            if (p.config_id, p.prompt_kind) not in found
        ]
        if missing:  # succeeded rows are not returned by the no-op upsert
            rows += conn.execute(
                sa.text(
                    f"SELECT {_GENERATION} FROM generation "
                    "WHERE (config_id, prompt_kind) IN (SELECT (x->>0)::bigint, x->>1 "
                    "FROM jsonb_array_elements(CAST(:keys AS jsonb)) AS x)"
                ),
                {"keys": json.dumps(missing)},
            ).all()
    return [_generation(r) for r in rows]


@dataclass(frozen=True)
class Completion:
    """An answer for one generation: the ledger row, the cost share, what the generation carries
    (reason and message), and the proposals read from it (the raw answer when there are none)."""

    generation: GenerationRow
    call_id: int
    cost_usd: float
    reason: str | None
    message: str | None
    tasks: Sequence[Task]
    raw_answer: str


def complete_generations(conn: Connection, items: Sequence[Completion]) -> dict[int, int]:
    """Mark generations succeeded and store their proposals as ``task`` rows (one row with the
    raw answer and no parts when none could be read), then settle their configs. Returns the
    task rows written per generation id (none for a generation that had already succeeded).

    Each call's cost goes to one generation only (callers give the others 0; a generation
    that reuses a call another generation already paid for gets 0), so sums add up.
    """
    if not items:
        return {}
    rows = [
        {
            "id": item.generation.id,
            "call": item.call_id,
            "reason": item.reason,
            "message": item.message,
            "cost": item.cost_usd,
        }
        for item in items
    ]
    updated = set(
        conn.execute(
            sa.text(
                "UPDATE generation g SET status = 'succeeded', llm_call_id = x.call, "
                "reason = x.reason, message = x.message, updated_at = now(), "
                "cost_usd = CASE WHEN x.cost = 0 OR EXISTS (SELECT 1 FROM generation o "
                "WHERE o.llm_call_id = x.call AND o.id <> g.id) THEN 0 ELSE x.cost END "
                "FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS x(id bigint, call bigint, "
                "reason text, message text, cost numeric) "
                "WHERE g.id = x.id AND g.status <> 'succeeded' RETURNING g.id"
            ),
            {"rows": json.dumps(rows)},
        ).scalars()
    )
    tasks: list[dict[str, Any]] = []
    written: dict[int, int] = {}
    for item in items:
        if item.generation.id not in updated:
            continue
        proposals = [
            {
                "raw": t.raw,
                "instruction": t.instruction,
                "input_fields": list(t.input_fields) if t.input_fields is not None else None,
                "output_field": t.output_field,
                "problem": t.problem,
                "extra_output_fields": list(t.extra_output_fields) or None,
            }
            for t in item.tasks
        ] or [
            {
                "raw": item.raw_answer,
                "instruction": None,
                "input_fields": None,
                "output_field": None,
                "problem": None,
                "extra_output_fields": None,
            }
        ]
        for position, proposal in enumerate(proposals):
            tasks.append(
                {
                    "config": item.generation.config_id,
                    "generation": item.generation.id,
                    "position": position,
                    **proposal,
                }
            )
        written[item.generation.id] = len(proposals)
    if tasks:
        conn.execute(
            sa.text(
                "INSERT INTO task (config_id, generation_id, position, raw, instruction, "
                "input_fields, output_field, problem, extra_output_fields) SELECT x.config, "
                "x.generation, x.position, x.raw, x.instruction, x.input_fields, "
                "x.output_field, x.problem, x.extra_output_fields "
                "FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS x(config bigint, "
                "generation bigint, position smallint, raw text, instruction text, "
                "input_fields text[], output_field text, problem text, "
                "extra_output_fields text[]) "
                "ON CONFLICT (generation_id, position) DO NOTHING"
            ),
            {"rows": json.dumps(tasks, ensure_ascii=False)},
        )
    settle_configs(conn, [item.generation.config_id for item in items])
    return written


def fail_generations(
    conn: Connection,
    generations: Sequence[GenerationRow],
    reason: str,
    message: str,
    call_id: int | None,
) -> None:
    """Mark generations failed (a config fails once none of its generations can succeed)."""
    conn.execute(
        sa.text(
            "UPDATE generation SET status = 'failed', reason = :reason, message = :message, "
            "llm_call_id = coalesce(:c, llm_call_id), updated_at = now() "
            "WHERE id = ANY(:ids) AND status <> 'succeeded'"
        ),
        {"ids": [g.id for g in generations], "reason": reason, "message": message, "c": call_id},
    )
    settle_configs(conn, [g.config_id for g in generations])


def retry_later(
    conn: Connection,
    generations: Sequence[GenerationRow],
    reason: str,
    message: str,
    call_id: int | None,
    *,
    max_attempts: int,
    defer_s: float,
) -> int:
    """After a transient failure: count one more attempt; a generation with attempts left is
    ``deferred`` until ``now + defer_s * 2**(attempts - 1)``, one that reached ``max_attempts``
    fails with the reason. Returns how many were deferred (the rest failed)."""
    deferred = conn.execute(
        sa.text(
            "UPDATE generation SET attempts = attempts + 1, "
            "status = CASE WHEN attempts + 1 >= :cap THEN 'failed' ELSE 'deferred' END, "
            "reason = :reason, updated_at = now(), llm_call_id = coalesce(:c, llm_call_id), "
            "message = CASE WHEN attempts + 1 >= :cap THEN :message || ' (gave up after ' || "
            "(attempts + 1) || ' runs)' ELSE :message END, "
            "next_attempt_at = CASE WHEN attempts + 1 >= :cap THEN NULL "
            "ELSE now() + make_interval(secs => :defer * power(2, attempts)) END "
            "WHERE id = ANY(:ids) AND status <> 'succeeded' RETURNING status"
        ),
        {
            "ids": [g.id for g in generations],
            "reason": reason,
            "message": message,
            "c": call_id,
            "cap": max_attempts,
            "defer": defer_s,
        },
    ).scalars()
    count = sum(1 for status in deferred if status == "deferred")
    settle_configs(conn, [g.config_id for g in generations])
    return count


def mark_unusable(
    conn: Connection, generations: Sequence[GenerationRow], call_id: int, answers: int
) -> None:
    """An unusable answer (paid, in the ledger) counted against generations that stay
    ``pending``: their next request is attempt number ``answers``."""
    conn.execute(
        sa.text(
            "UPDATE generation SET unusable_answers = greatest(unusable_answers, :n), "
            "llm_call_id = :c, updated_at = now() WHERE id = ANY(:ids) AND status <> 'succeeded'"
        ),
        {"ids": [g.id for g in generations], "n": answers, "c": call_id},
    )


def defer_generations(
    conn: Connection, generations: Sequence[GenerationRow], reason: str, message: str
) -> None:
    """Leave generations ``deferred`` with a reason: a later run sends them."""
    conn.execute(
        sa.text(
            "UPDATE generation SET status = 'deferred', reason = :reason, message = :message, "
            "next_attempt_at = NULL, updated_at = now() "
            "WHERE id = ANY(:ids) AND status <> 'succeeded'"
        ),
        {"ids": [g.id for g in generations], "reason": reason, "message": message},
    )
    settle_configs(conn, [g.config_id for g in generations])


def settle_configs(conn: Connection, config_ids: Sequence[int]) -> None:
    """Recompute waiting configs' states from their generations.

    A deferred generation defers its config (with the deferral's reason); else a pending one
    (still being answered) leaves it ``collected``; else it is ``generated`` when one generation
    succeeded (noting truncated answers), or ``failed`` with the first failure's reason. The
    configs are locked first, in id order, so that generations of one config finishing at once
    (in this process or another) serialise here; NO KEY UPDATE does not conflict with the KEY
    SHARE lock that inserting tasks took.
    """
    ids = sorted(set(config_ids))
    waiting = list(
        conn.execute(
            sa.text(
                "SELECT id FROM dataset_config WHERE id = ANY(:ids) AND status = ANY(:waiting) "
                "ORDER BY id FOR NO KEY UPDATE"
            ),
            {"ids": ids, "waiting": list(WAITING)},
        ).scalars()
    )
    if not waiting:
        return
    generations: dict[int, list[Any]] = {config_id: [] for config_id in waiting}
    for row in conn.execute(
        sa.text(
            "SELECT config_id, status, reason, message FROM generation "
            "WHERE config_id = ANY(:ids) ORDER BY id"
        ),
        {"ids": waiting},
    ):
        generations[row.config_id].append(row)
    updates = []
    for config_id, rows in generations.items():
        deferred = [g for g in rows if g.status == "deferred"]
        pending = [g for g in rows if g.status == "pending"]
        succeeded = [g for g in rows if g.status == "succeeded"]
        if deferred:
            state = ("deferred", deferred[0].reason, deferred[0].message)
        elif pending:
            state = ("collected", None, None)
        elif succeeded:
            state = ("generated", None, None)
        elif rows:
            state = ("failed", rows[0].reason, rows[0].message)
        else:
            continue
        truncated = any(g.reason == Reason.RESPONSE_TRUNCATED.value for g in succeeded)
        updates.append(
            {
                "id": config_id,
                "status": state[0],
                "reason": state[1],
                "message": state[2],
                "truncated": truncated and not (deferred or pending),
            }
        )
    if updates:
        conn.execute(
            sa.text(
                "UPDATE dataset_config c SET status = x.status, reason = x.reason, "
                "message = x.message, updated_at = now(), notes = CASE WHEN x.truncated "
                "AND NOT ('response_truncated' = ANY(c.notes)) "
                "THEN array_append(c.notes, 'response_truncated') ELSE c.notes END "
                "FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS x(id bigint, status text, "
                "reason text, message text, truncated boolean) WHERE c.id = x.id"
            ),
            {"rows": json.dumps(updates)},
        )
