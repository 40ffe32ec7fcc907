"""The coreset (Chen et al., 2023): k-means on embeddings, then k-center greedy in each cluster.

The budget is shared among groups (the whole pool, task categories or tasks) and then among the
clusters of each group in proportion to their sizes, every non-empty cluster getting at least
one pick. Inside a cluster the first pick is its most central point and each next pick the point
farthest from those already picked (k-center greedy), so the picks are mutually distant. By
default each pick is then moved to the most central point of the cell it covers (the points
nearest to it), which keeps the spread and makes the picks representative: on embeddings shaped
like this collection's, that lowers the mean distance from a point to its nearest pick (see
``bench/selection.py``, which prints both).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dynosaur.select.budget import allocate
from dynosaur.select.geometry import farthest_first, kmeans_labels, medoid_refine, nearest

# Without an explicit k, a cluster per this many picks: enough picks per cluster for k-center
# greedy to spread them, enough clusters for k-means to follow the shape of the pool.
PICKS_PER_CLUSTER = 10


@dataclass(frozen=True)
class Picks:
    """Selected row indices in rank order, with a score per pick (NaN = none)."""

    indices: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return len(self.indices)


def group_codes(keys: Sequence[object] | np.ndarray | None, n: int) -> np.ndarray:
    """Dense group codes (0..g-1, in order of first appearance) for per-group selection."""
    if keys is None:
        return np.zeros(n, dtype=np.int64)
    codes: dict[object, int] = {}
    return np.fromiter((codes.setdefault(k, len(codes)) for k in keys), np.int64, count=n)


def coreset(
    points: np.ndarray,
    budget: int,
    *,
    clusters: int | None = None,
    seed: int,
    groups: np.ndarray | None = None,
    refine: bool = True,
) -> Picks:
    """Pick ``budget`` rows of ``points``: per group, k-means then k-center greedy per cluster.

    ``clusters`` is k per group (at most the group's share of the budget, so every cluster
    contributes); None means one cluster per :data:`PICKS_PER_CLUSTER` picks of the share.
    ``refine`` moves each pick to the centre of its cell (:func:`medoid_refine`).
    Rank: first every cluster's central pick, then every cluster's second pick, and so on
    (larger clusters first within a round), so a prefix of the ranking is a spread-out subset.
    Score: how many points of its cluster the pick stands for (those nearest to it).
    """
    n = len(points)
    groups = np.zeros(n, dtype=np.int64) if groups is None else np.asarray(groups)
    group_ids, group_sizes = np.unique(groups, return_counts=True)
    shares = allocate(group_sizes, budget, min_each=1)
    rows: list[tuple[int, int, int, float]] = []  # (round, -cluster size, index, score)
    for gid, share in zip(group_ids, shares, strict=True):
        if share == 0:
            continue
        members = np.flatnonzero(groups == gid)
        k = min(clusters, int(share)) if clusters else math.ceil(share / PICKS_PER_CLUSTER)
        labels = kmeans_labels(points[members], k, seed=seed)
        cluster_ids, cluster_sizes = np.unique(labels, return_counts=True)
        takes = allocate(cluster_sizes, int(share), min_each=1)
        for cid, size, take in zip(cluster_ids, cluster_sizes, takes, strict=True):
            if take == 0:
                continue
            inside = members[labels == cid]
            picks, _ = farthest_first(points[inside], int(take))
            if refine:
                picks = medoid_refine(points[inside], picks)
            cell, _ = nearest(points[inside], points[inside[picks]])
            weight = np.bincount(cell, minlength=len(picks))
            for rnd, (p, w) in enumerate(zip(picks, weight, strict=True)):
                rows.append((rnd, -int(size), int(inside[p]), float(w)))
    rows.sort()
    return Picks(
        indices=np.array([r[2] for r in rows], dtype=np.int64),
        scores=np.array([r[3] for r in rows], dtype=np.float64),
    )
