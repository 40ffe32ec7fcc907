"""Embeddings of instances and tasks, computed once per (model, item) and kept in the store.

The embedding model is loaded only when something is missing from the store; missing rows are
embedded and saved chunk by chunk, so an interrupted run keeps its work.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from sqlalchemy.engine import Engine

from dynosaur.progress import NullProgress, Progress
from dynosaur.select.embed import Embedder, instance_text, load_embedder, model_key, task_text
from dynosaur.settings import Settings
from dynosaur.store import selections as store
from dynosaur.store.selections import Kind


class LazyEmbedder:
    """The configured embedding model, loaded on the first :meth:`encode`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.key = model_key(settings.embedding_model)
        self._model: Embedder | None = None

    def encode(self, texts: Sequence[str], progress: Progress) -> np.ndarray:
        """Normalised vectors of ``texts``."""
        if self._model is None:
            self._model = load_embedder(
                self.settings.embedding_model,
                device=self.settings.selection_device,
                batch_size=self.settings.embedding_batch_size,
            )
        return self._model.encode(texts, progress)


def ensure_vectors(
    engine: Engine,
    kind: Kind,
    ids: np.ndarray,
    *,
    model: str,
    encode: Callable[[Sequence[str], Progress], np.ndarray],
    texts: Callable[[np.ndarray], list[str]],
    progress: Progress | None = None,
    chunk: int = 4096,
) -> tuple[np.ndarray, int]:
    """Vectors for ``ids`` (in order): stored ones loaded, missing ones embedded and stored.

    Returns (matrix [len(ids), dim], number newly embedded).
    """
    progress = progress or NullProgress()
    known = store.load_vectors(engine, kind, model, ids)
    missing = np.array([i for i in ids if int(i) not in known], dtype=np.int64)
    progress.start(len(missing), f"embedding {kind}s ({model.rsplit('/', 1)[-1]})")
    for start in range(0, len(missing), chunk):
        part = missing[start : start + chunk]
        vectors = encode(texts(part), progress)
        store.save_vectors(engine, kind, model, part, vectors)
        known.update((int(i), v) for i, v in zip(part, vectors, strict=True))
    progress.finish()
    if not len(ids):
        return np.zeros((0, 0), dtype=np.float32), 0
    return np.stack([known[int(i)] for i in ids]).astype(np.float32, copy=False), len(missing)


def instance_vectors(
    engine: Engine, settings: Settings, ids: np.ndarray, progress: Progress | None = None
) -> tuple[np.ndarray, int]:
    """Embeddings of instances (stored ones reused); returns (matrix, newly embedded)."""
    embedder = LazyEmbedder(settings)

    def texts(part: np.ndarray) -> list[str]:
        return [instance_text(*f) for f in store.instance_fields(engine, part)]

    return ensure_vectors(
        engine, "instance", ids, model=embedder.key, encode=embedder.encode, texts=texts,
        progress=progress,
    )  # fmt: skip


def task_vectors(
    engine: Engine,
    settings: Settings,
    ids: np.ndarray,
    instructions: Sequence[str],
    progress: Progress | None = None,
) -> tuple[np.ndarray, int]:
    """Embeddings of task instructions (stored ones reused); returns (matrix, newly embedded)."""
    embedder = LazyEmbedder(settings)
    by_id = {int(i): text for i, text in zip(ids, instructions, strict=True)}

    def texts(part: np.ndarray) -> list[str]:
        return [task_text(by_id[int(i)]) for i in part]

    return ensure_vectors(
        engine, "task", ids, model=embedder.key, encode=embedder.encode, texts=texts,
        progress=progress,
    )  # fmt: skip
