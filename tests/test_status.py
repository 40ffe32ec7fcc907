"""`dynosaur status`'s batch figures (issue 15): a published batch shows the figures stored when
it was published, so reading them does not count the instance table; a batch still building is
counted from its own rows. Both agree with the ``batch_summary`` view."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dynosaur.store.batches import publish_batch
from dynosaur.store.status import BatchSummary, batch_summaries


def _batch_with_one_instance(conn: sa.Connection, key: str, dataset_id: str) -> int:
    ds = conn.execute(
        sa.text(
            "INSERT INTO hub_dataset (dataset_id, sha, discovered_via, hub_url) "
            "VALUES (:d, 'abc', 'created', 'https://huggingface.co/datasets/' || :d) RETURNING id"
        ),
        {"d": dataset_id},
    ).scalar_one()
    batch = conn.execute(
        sa.text("INSERT INTO batch (run_key) VALUES (:k) RETURNING id"), {"k": key}
    ).scalar_one()
    cfg = conn.execute(
        sa.text(
            "INSERT INTO dataset_config (hub_dataset_id, config_name, status, batch_id) "
            "VALUES (:d, 'c', 'curated', :b) RETURNING id"
        ),
        {"d": ds, "b": batch},
    ).scalar_one()
    call = conn.execute(
        sa.text(
            "INSERT INTO llm_call (request_hash, model, prompt_version, messages, status, "
            "response) VALUES (:h, 'm', 'v', '[]', 'succeeded', '[]') RETURNING id"
        ),
        {"h": key},
    ).scalar_one()
    gen = conn.execute(
        sa.text(
            "INSERT INTO generation (config_id, prompt_kind, request_hash, llm_call_id, "
            "status, cost_usd) VALUES (:c, 'description_aware', :h, :l, 'succeeded', 0.25) "
            "RETURNING id"
        ),
        {"c": cfg, "h": key, "l": call},
    ).scalar_one()
    for pos, state in enumerate(("valid", "rejected")):
        task = conn.execute(
            sa.text(
                "INSERT INTO task (config_id, generation_id, position, instruction, "
                "input_fields, output_field, status, reason, batch_id, fingerprint) VALUES "
                "(:c, :g, :p, 'do it', '{a}', 'b', :s, "
                "CASE WHEN :s = 'rejected' THEN 'duplicate_instruction' END, :b, :f) RETURNING id"
            ),
            {"c": cfg, "g": gen, "p": pos, "s": state, "b": batch, "f": f"{key}{pos}"},
        ).scalar_one()
    _instance(conn, task, batch)
    return int(batch)


def _instance(conn: sa.Connection, task: int, batch: int) -> None:
    conn.execute(
        sa.text(
            "INSERT INTO instance (task_id, batch_id, row_index, instruction, input, output, "
            "license, license_class, website, source) VALUES (:t, :b, "
            "(SELECT count(*) FROM instance WHERE task_id = :t), "
            "'do it', 'x', 'y', 'mit', 'permissive', 'w', 'org/ds')"
        ),
        {"t": task, "b": batch},
    )


def _from_view(engine: Engine) -> list[BatchSummary]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT batch_id, version, status, run_key, window_start, datasets, configs, "
                "tasks_valid, tasks_rejected, instances, llm_calls, cost_usd "
                "FROM batch_summary ORDER BY batch_id DESC"
            )
        ).all()
    return [BatchSummary(**{**r._asdict(), "cost_usd": float(r.cost_usd)}) for r in rows]


def test_status_shows_published_figures_as_stored_and_building_ones_as_counted(
    store: Engine,
) -> None:
    with store.begin() as conn:
        published = _batch_with_one_instance(conn, "pub", "org/a")
    publish_batch(store, published)
    with store.begin() as conn:
        building = _batch_with_one_instance(conn, "wip", "org/b")

    shown = batch_summaries(store, limit=10)
    assert shown == _from_view(store)
    assert [(b.batch_id, b.status, b.version) for b in shown] == [
        (building, "building", None),
        (published, "published", 1),
    ]
    assert (shown[1].tasks_valid, shown[1].tasks_rejected, shown[1].instances) == (1, 1, 1)
    assert (shown[1].llm_calls, shown[1].cost_usd) == (1, 0.25)
    assert batch_summaries(store, published_only=True) == [shown[1]]

    # A row added under a published batch (never done: published rows are final) is not
    # counted, since its figures are read as stored; a building batch's rows are counted now.
    with store.begin() as conn:
        task_of = "SELECT id FROM task WHERE batch_id = :b AND status = 'valid'"
        for batch in (published, building):
            _instance(conn, conn.execute(sa.text(task_of), {"b": batch}).scalar_one(), batch)
    again = {b.batch_id: b.instances for b in batch_summaries(store, limit=10)}
    assert again == {published: 1, building: 2}
