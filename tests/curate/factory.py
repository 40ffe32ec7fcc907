"""Test helpers shared by the curate, select and query tests: the rows curation reads, inserted
with plain SQL, the curate and publish steps over them, and settings pointing at the emulators.

Curation's input is written by collect and generate; :class:`StoreFactory` writes the same
columns, so these tests do not depend on those steps. Everything after that is the real code:
curate builds the instances, publish makes the version.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from itertools import count
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy.engine import Engine

from dynosaur.curate import curate
from dynosaur.model import FieldInfo
from dynosaur.settings import Settings
from dynosaur.store import batches

if TYPE_CHECKING:
    from dynosaur.emulators.hub import HubEmulator
    from dynosaur.emulators.llm import LLMEmulator

# Unique parts of keys (dataset revisions, request hashes) across factories of a session.
_serial = count(1)


class StoreFactory:
    """Inserts the rows curation reads (status ``generated`` configs, ``proposed`` tasks) and
    runs the curate and publish steps over them."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings

    def dataset(
        self,
        dataset_id: str = "org/ds",
        *,
        licenses: Sequence[str] = ("mit",),
        task_categories: Sequence[str] = (),
        sha: str | None = None,
        created_at: str | None = "2024-01-01T10:00:00Z",
    ) -> int:
        """A collected ``hub_dataset`` row; returns its id."""
        with self.engine.begin() as conn:
            return conn.execute(
                sa.text(
                    "INSERT INTO hub_dataset (dataset_id, sha, discovered_via, hub_url, licenses, "
                    "task_categories, status, created_at) VALUES (:d, :s, 'created', :u, :l, :t, "
                    "'collected', :c) RETURNING id"
                ),
                {
                    "d": dataset_id,
                    "s": sha or f"sha{next(_serial)}",
                    "u": f"https://huggingface.co/datasets/{dataset_id}",
                    "l": list(licenses),
                    "t": list(task_categories),
                    "c": created_at,
                },
            ).scalar_one()

    def config(
        self,
        hub_dataset_id: int,
        name: str = "default",
        *,
        fields: Sequence[FieldInfo] | None = None,
        rows: Sequence[dict[str, Any]] = (),
        status: str = "generated",
    ) -> int:
        """A ``dataset_config`` row (fields default to the keys of the first row, as strings)."""
        if fields is None:
            fields = [FieldInfo(k, "string") for k in (rows[0] if rows else {})]
        with self.engine.begin() as conn:
            return conn.execute(
                sa.text(
                    "INSERT INTO dataset_config (hub_dataset_id, config_name, fields, sample_rows, "
                    "status, reason) VALUES (:d, :n, CAST(:f AS jsonb), CAST(:r AS jsonb), :s, "
                    ":reason) RETURNING id"
                ),
                {
                    "d": hub_dataset_id,
                    "n": name,
                    "f": json.dumps([f.to_json() for f in fields]),
                    "r": json.dumps(list(rows)),
                    "s": status,
                    "reason": "hub_error" if status in ("skipped", "deferred", "failed") else None,
                },
            ).scalar_one()

    def generation(
        self, config_id: int, kind: str = "description_aware", *, cost_usd: float = 0.001
    ) -> int:
        """A succeeded ``generation`` with its ``llm_call`` (tokens and cost)."""
        with self.engine.begin() as conn:
            call = conn.execute(
                sa.text(
                    "INSERT INTO llm_call (request_hash, model, prompt_version, messages, "
                    "response, prompt_tokens, completion_tokens, cost_usd, status) VALUES "
                    "(:h, 'gpt-4o-mini', 'v1', '[]', '[]', 1000, 100, :c, 'succeeded') RETURNING id"
                ),
                {"h": f"hash{next(_serial)}", "c": cost_usd},
            ).scalar_one()
            return conn.execute(
                sa.text(
                    "INSERT INTO generation (config_id, prompt_kind, request_hash, llm_call_id, "
                    "status, cost_usd) VALUES (:c, :k, :h, :l, 'succeeded', :cost) RETURNING id"
                ),
                {"c": config_id, "k": kind, "h": f"req{call}", "l": call, "cost": cost_usd},
            ).scalar_one()

    def task(
        self,
        config_id: int,
        instruction: str | None,
        input_fields: Sequence[str] | None,
        output_field: str | None,
        *,
        generation_id: int | None = None,
        raw: str | None = None,
    ) -> int:
        """A ``proposed`` task (a generation is created for the config when none is given)."""
        with self.engine.begin() as conn:
            if generation_id is None:
                generation_id = conn.execute(
                    sa.text("SELECT min(id) FROM generation WHERE config_id = :c"),
                    {"c": config_id},
                ).scalar()
        if generation_id is None:
            generation_id = self.generation(config_id)
        with self.engine.begin() as conn:
            position = conn.execute(
                sa.text("SELECT count(*) FROM task WHERE generation_id = :g"), {"g": generation_id}
            ).scalar_one()
            return conn.execute(
                sa.text(
                    "INSERT INTO task (config_id, generation_id, position, raw, instruction, "
                    "input_fields, output_field) VALUES (:c, :g, :p, :raw, :i, :in, :out) "
                    "RETURNING id"
                ),
                {
                    "c": config_id,
                    "g": generation_id,
                    "p": position,
                    "raw": raw if raw is not None else json.dumps([instruction, input_fields]),
                    "i": instruction,
                    "in": list(input_fields) if input_fields is not None else None,
                    "out": output_field,
                },
            ).scalar_one()

    def sentiment_config(
        self, dataset_id: str = "org/sentiment", name: str = "default", n_rows: int = 10, **kw: Any
    ) -> int:
        """A binary classification config: ``text`` -> ``label`` (ClassLabel neg/pos, balanced)."""
        ds = self.dataset(dataset_id, **kw)
        rows = [
            {"text": f"review number {i} of {dataset_id}", "label": "pos" if i % 2 else "neg"}
            for i in range(n_rows)
        ]
        fields = [FieldInfo("text", "string"), FieldInfo("label", "class_label", ("neg", "pos"))]
        return self.config(ds, name, fields=fields, rows=rows)

    def curate(self, run_key: str) -> int:
        """Open (or find) the batch of ``run_key`` and curate every generated config into it;
        returns the batch id."""
        batch = batches.open_batch(self.engine, run_key)
        curate(self.settings, self.engine, batch.id)
        return batch.id

    def publish(self, run_key: str) -> batches.Batch:
        """Curate into the batch of ``run_key`` and publish it as the next version."""
        return batches.publish_batch(self.engine, self.curate(run_key))

    def rows(self, sql: str, **params: Any) -> list[sa.Row[Any]]:
        """Run a query, return its rows."""
        with self.engine.connect() as conn:
            return list(conn.execute(sa.text(sql), params).all())


def live_settings(
    settings: Settings, hub: HubEmulator, llm: LLMEmulator, **extra: object
) -> Settings:
    """``settings`` pointing at running Hub and LLM emulators, with no budget cap."""
    return settings.model_copy(
        update={
            "hub_endpoint": hub.url,
            "viewer_url": hub.url,
            "llm_base_url": llm.base_url,
            "llm_api_key": SecretStr("sk-test"),
            "budget_usd": None,
            **extra,
        }
    )


def cli_environment(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    """The environment a ``dynosaur`` command needs to use the test store (and data folder)."""
    monkeypatch.setenv("DYNOSAUR_DATABASE_URL", settings.database_url or "")
    monkeypatch.setenv("DYNOSAUR_READER_ROLE", settings.reader_role)
    monkeypatch.setenv("DYNOSAUR_DATA_DIR", str(settings.data_dir))
