"""Embeddings are computed once per (model, item), kept in Postgres and reused."""

from __future__ import annotations

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dynosaur.select.embed import instance_text, load_embedder
from dynosaur.select.vectors import instance_vectors, task_vectors
from dynosaur.settings import Settings
from dynosaur.store import selections as store
from tests.curate.factory import StoreFactory
from tests.select.factory import ARITHMETIC, SENTIMENT, TRANSLATION, add_batch

pytestmark = pytest.mark.select


def test_vectors_round_trip_through_binary_copy_and_first_write_wins(
    factory: StoreFactory, select_store: Engine
) -> None:
    batch = add_batch(factory, 1, [SENTIMENT])
    ids = np.array(batch.instance_ids[0][:3])
    vectors = np.random.default_rng(0).normal(size=(3, 384)).astype(np.float32)
    assert store.save_vectors(select_store, "instance", "m/x", ids, vectors) == 3
    assert store.save_vectors(select_store, "instance", "m/x", ids, vectors + 1) == 0
    loaded = store.load_vectors(select_store, "instance", "m/x", ids)
    for i, v in zip(ids, vectors, strict=True):
        np.testing.assert_array_equal(loaded[int(i)], v)
    assert store.load_vectors(select_store, "instance", "other-model", ids) == {}


def test_a_selection_over_version_two_embeds_only_the_new_instances(
    factory: StoreFactory, select_store: Engine, settings: Settings
) -> None:
    add_batch(factory, 1, [SENTIMENT, TRANSLATION])
    first = store.instance_pool(select_store, 1)
    vectors, embedded = instance_vectors(select_store, settings, first.instance_id)
    assert embedded == len(first) == 11 and vectors.shape == (11, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    add_batch(factory, 2, [ARITHMETIC])
    second = store.instance_pool(select_store, 2)
    again, embedded = instance_vectors(select_store, settings, second.instance_id)
    assert embedded == len(ARITHMETIC.rows) == 6
    np.testing.assert_array_equal(again[:11], vectors)  # the stored ones, untouched
    with select_store.connect() as conn:
        stored = conn.execute(sa.text("SELECT count(*) FROM instance_embedding")).scalar_one()
    assert stored == 17


def test_stored_vectors_are_the_model_s_embedding_of_the_documented_text(
    factory: StoreFactory, select_store: Engine, settings: Settings
) -> None:
    batch = add_batch(factory, 1, [TRANSLATION])
    ids = np.array(batch.instance_ids[0][:2])
    vectors, _ = instance_vectors(select_store, settings, ids)
    embedder = load_embedder(settings.embedding_model, device="cpu")
    texts = [instance_text(TRANSLATION.instruction, x, y) for x, y in TRANSLATION.rows[:2]]
    assert texts[0].startswith("Instruction: Translate") and "\nInput: Good morning." in texts[0]
    np.testing.assert_allclose(vectors, embedder.encode(texts), atol=1e-5)


def test_task_instructions_are_embedded_once(
    factory: StoreFactory, select_store: Engine, settings: Settings
) -> None:
    add_batch(factory, 1, [SENTIMENT, TRANSLATION])
    tasks = store.task_pool(select_store, 1)
    vectors, embedded = task_vectors(select_store, settings, tasks.task_id, tasks.instruction)
    again, embedded_again = task_vectors(select_store, settings, tasks.task_id, tasks.instruction)
    assert (embedded, embedded_again) == (2, 0)
    np.testing.assert_array_equal(vectors, again)
    # Different instructions are different points.
    assert np.linalg.norm(vectors[0] - vectors[1]) > 0.5
