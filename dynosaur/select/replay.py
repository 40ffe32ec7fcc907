"""Replay sets for continual training (Dynosaur, section 4): which earlier tasks to replay.

The instruction strategy picks the earlier tasks whose instruction embeddings are most diverse:
farthest-first from the new batch's instructions and from each other. The baselines pick at
random, or farthest-first on data representations (each task's mean instance embedding).
"""

from __future__ import annotations

import numpy as np

from dynosaur.select.coreset import Picks
from dynosaur.select.geometry import farthest_first

STRATEGIES = ("instruction", "random", "data")


def diverse_replay(candidates: np.ndarray, current: np.ndarray, count: int) -> Picks:
    """``count`` rows of ``candidates`` farthest from ``current`` and from each other.

    Score: the pick's distance to the nearest current or earlier-picked vector.
    """
    anchors = current if len(current) else None
    picks, radii = farthest_first(candidates, count, anchors=anchors)
    return Picks(indices=picks, scores=radii)


def random_replay(n_candidates: int, count: int, *, seed: int) -> Picks:
    """``count`` candidates drawn uniformly at random (the baseline)."""
    rng = np.random.default_rng(seed)
    picks = rng.choice(n_candidates, size=min(count, n_candidates), replace=False).astype(np.int64)
    return Picks(indices=picks, scores=np.full(len(picks), np.nan))


def mean_by_group(vectors: np.ndarray, groups: np.ndarray, order: np.ndarray) -> np.ndarray:
    """The normalised mean vector of each group in ``order`` (a task's data representation)."""
    dim = vectors.shape[1] if vectors.ndim == 2 else 0
    out = np.zeros((len(order), dim), dtype=np.float32)
    position = {int(g): i for i, g in enumerate(order)}
    index = np.fromiter((position.get(int(g), -1) for g in groups), np.int64, count=len(groups))
    keep = index >= 0
    np.add.at(out, index[keep], vectors[keep])
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return np.divide(out, norms, out=out, where=norms > 0)
