"""Learning percentage (Mekala et al., 2024): scores from perplexity traces, per-cluster picks.

A trace is one sample's perplexity on its response tokens before training (P0) and after each
epoch of training the scorer on the whole pool (P1..Pn). Low learning percentage = hard sample.
"""

from __future__ import annotations

import numpy as np

from dynosaur.select.budget import allocate
from dynosaur.select.coreset import Picks


def learning_percentage(traces: np.ndarray) -> np.ndarray:
    """LP(1) = (P0 - P1) / (P0 - Pn) per row of ``traces`` [samples, P0..Pn]; 0 when P0 = Pn."""
    traces = np.asarray(traces, dtype=np.float64)
    if traces.ndim != 2 or traces.shape[1] < 2:
        raise ValueError("traces need P0 and at least one later perplexity per sample")
    drop_first = traces[:, 0] - traces[:, 1]
    drop_total = traces[:, 0] - traces[:, -1]
    out = np.zeros(len(traces))
    np.divide(drop_first, drop_total, out=out, where=drop_total != 0)
    return out


def one_epoch_learning_percentage(traces: np.ndarray) -> np.ndarray:
    """The one-epoch variant (P0 - P1) / P0 (0 when P0 = 0)."""
    traces = np.asarray(traces, dtype=np.float64)
    if traces.ndim != 2 or traces.shape[1] < 2:
        raise ValueError("traces need P0 and P1 per sample")
    out = np.zeros(len(traces))
    np.divide(traces[:, 0] - traces[:, 1], traces[:, 0], out=out, where=traces[:, 0] != 0)
    return out


def hardest_per_cluster(scores: np.ndarray, labels: np.ndarray, budget: int) -> Picks:
    """In every cluster the lowest-scored (hardest) samples, ``budget`` in all.

    The budget is shared in proportion to cluster sizes and every non-empty cluster gives at
    least one sample. Ranked by score (hardest first), ties by index.
    """
    scores = np.asarray(scores, dtype=np.float64)
    chosen: list[np.ndarray] = []
    for cid, take in _shares(labels, budget):
        inside = np.flatnonzero(labels == cid)
        order = np.lexsort((inside, scores[inside]))
        chosen.append(inside[order[:take]])
    picked = np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64)
    order = np.lexsort((picked, scores[picked]))
    return Picks(indices=picked[order], scores=scores[picked[order]])


def random_per_cluster(labels: np.ndarray, budget: int, *, seed: int) -> Picks:
    """The baseline: as many samples per cluster as :func:`hardest_per_cluster`, at random."""
    rng = np.random.default_rng(seed)
    chosen = [
        rng.choice(np.flatnonzero(labels == cid), size=take, replace=False)
        for cid, take in _shares(labels, budget)
    ]
    picked = np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)
    rank = rng.permutation(len(picked))
    return Picks(indices=picked[rank], scores=np.full(len(picked), np.nan))


def _shares(labels: np.ndarray, budget: int) -> list[tuple[int, int]]:
    cluster_ids, sizes = np.unique(np.asarray(labels), return_counts=True)
    takes = allocate(sizes, budget, min_each=1)
    return [(int(c), int(t)) for c, t in zip(cluster_ids, takes, strict=True) if t > 0]
