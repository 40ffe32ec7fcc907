"""Migration 0020 on a store written before it: waiting rows become ``deferred``, the ledger's
``error`` becomes ``reason``, and the views read the renamed column."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from yoyo import get_backend, read_migrations
from yoyo.migrations import MigrationList

from dynosaur.store import upgrade
from dynosaur.store.engine import libpq_url, sqlalchemy_url
from dynosaur.store.migrations import sql_dir
from tests.generate.conftest import rows_of

MIGRATION = "0020_deferred_generation"

# A store as the generate step left it before the migration: config -> (status, reason), and
# its generation's (status, reason).
BEFORE = {
    "over-budget": ("collected", "budget_exhausted", "pending", "budget_exhausted"),
    "bad-key": ("collected", "llm_auth_error", "pending", "llm_auth_error"),
    "planned": ("collected", None, "pending", None),
    "done": ("generated", None, "succeeded", None),
}


def test_waiting_rows_become_deferred_and_llm_call_error_becomes_reason(
    databases, reader_role
) -> None:
    url = databases.create("migrate_0020")
    engine = sa.create_engine(sqlalchemy_url(url), poolclass=sa.NullPool)
    backend = get_backend(libpq_url(url))
    earlier = MigrationList(
        [m for m in read_migrations(str(sql_dir() / "migrations")) if m.id < MIGRATION]
    )
    with backend.lock():
        backend.apply_migrations(backend.to_apply(earlier))
    with engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO reason (code, stage, description) VALUES (:c, 'generate', 'x')"),
            [{"c": c} for c in ("budget_exhausted", "llm_auth_error", "llm_server_error")],
        )
        dataset = conn.execute(
            sa.text(
                "INSERT INTO hub_dataset (dataset_id, sha, discovered_via, hub_url, status) "
                "VALUES ('org/ds', 'sha', 'created', 'https://hub/org/ds', 'collected') "
                "RETURNING id"
            )
        ).scalar_one()
        call = conn.execute(
            sa.text(
                "INSERT INTO llm_call (request_hash, model, prompt_version, messages, status, "
                "response) VALUES ('h0', 'm', 'v', '[]', 'succeeded', '[]') RETURNING id"
            )
        ).scalar_one()
        conn.execute(
            sa.text(
                "INSERT INTO llm_call (request_hash, model, prompt_version, messages, status, "
                "error, message) VALUES ('h1', 'm', 'v', '[]', 'failed', 'llm_server_error', "
                "'HTTP 503')"
            )
        )
        for name, (status, reason, gen_status, gen_reason) in BEFORE.items():
            config = conn.execute(
                sa.text(
                    "INSERT INTO dataset_config (hub_dataset_id, config_name, status, reason) "
                    "VALUES (:d, :n, :s, :r) RETURNING id"
                ),
                {"d": dataset, "n": name, "s": status, "r": reason},
            ).scalar_one()
            conn.execute(
                sa.text(
                    "INSERT INTO generation (config_id, prompt_kind, request_hash, status, "
                    "reason, llm_call_id) VALUES (:c, 'description_aware', :h, :s, :r, :l)"
                ),
                {
                    "c": config,
                    "h": f"h-{name}",
                    "s": gen_status,
                    "r": gen_reason,
                    "l": call if gen_status == "succeeded" else None,
                },
            )

    assert MIGRATION in upgrade(engine, reader_role)

    configs = rows_of(engine, "SELECT config_name, status, reason FROM dataset_config")
    assert {c.config_name: (c.status, c.reason) for c in configs} == {
        "over-budget": ("deferred", "budget_exhausted"),
        "bad-key": ("deferred", "llm_auth_error"),
        "planned": ("collected", None),
        "done": ("generated", None),
    }
    generations = rows_of(
        engine,
        "SELECT c.config_name, g.status, g.reason FROM generation g "
        "JOIN dataset_config c ON c.id = g.config_id",
    )
    assert {g.config_name: (g.status, g.reason) for g in generations} == {
        "over-budget": ("deferred", "budget_exhausted"),
        "bad-key": ("deferred", "llm_auth_error"),
        "planned": ("pending", None),
        "done": ("succeeded", None),
    }
    failed = rows_of(
        engine, "SELECT status, reason, message FROM llm_call WHERE reason IS NOT NULL"
    )
    assert [tuple(f) for f in failed] == [("failed", "llm_server_error", "HTTP 503")]
    counted = rows_of(
        engine,
        "SELECT entity, status, reason, n FROM rejection_by_reason WHERE entity = 'llm_call'",
    )
    assert [tuple(c) for c in counted] == [("llm_call", "failed", "llm_server_error", 1)]
    # A deferred generation without a reason is refused, as a failed one is.
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(sa.text("UPDATE generation SET status = 'deferred', reason = NULL"))
    engine.dispose()
