"""The coreset (Chen et al., 2023): k-means on embeddings, then k-center greedy.

The budget is shared among groups (the whole pool, task categories or tasks) in proportion to
their sizes. Inside a group, k-means finds the clusters; each cluster's most central point is
picked first (every cluster contributes), then k-center greedy runs over the whole group: each
next pick is the point farthest from every pick so far. That is the k-center objective's greedy
2-approximation: the largest distance from a point to its nearest pick (the radius the picks
cover) is at most twice the best possible, where picks shared out by cluster size leave some
clusters' far points uncovered (``bench/selection.py`` prints the max distance and the mean
distance, each as a ratio to random picks).

Optionally (``refine``) each pick is then moved to the most central point of the cell it covers
(the points nearest to it): that lowers the mean distance from a point to its nearest pick
(representative picks) at the price of the max distance (the edges are no longer covered).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dynosaur.select.budget import allocate
from dynosaur.select.geometry import (
    farthest_first,
    kmeans_labels,
    medoid_refine,
    nearest,
    nearest_to_mean,
)

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
    refine: bool = False,
) -> Picks:
    """Pick ``budget`` rows of ``points``: per group, k-means, each cluster's central point,
    then k-center greedy over the group.

    ``clusters`` is k per group (at most the group's share of the budget, so every cluster
    contributes); None means one cluster per :data:`PICKS_PER_CLUSTER` picks of the share.
    ``refine`` moves each pick to the centre of its cell (:func:`medoid_refine`): lower mean
    distance, higher max distance.
    Rank: the groups' picks interleaved, each group's in pick order (cluster centres, larger
    clusters first, then farthest-first), so a prefix of the ranking is a spread-out subset.
    Score: how many points of its group the pick stands for (those nearest to it).
    """
    n = len(points)
    groups = np.zeros(n, dtype=np.int64) if groups is None else np.asarray(groups)
    group_ids, group_sizes = np.unique(groups, return_counts=True)
    shares = allocate(group_sizes, budget, min_each=1)
    rows: list[tuple[int, int, int, float]] = []  # (round, group, index, score)
    for gid, share in zip(group_ids, shares, strict=True):
        if share == 0:
            continue
        members = np.flatnonzero(groups == gid)
        inside = points[members]
        k = min(clusters, int(share)) if clusters else math.ceil(share / PICKS_PER_CLUSTER)
        labels = kmeans_labels(inside, k, seed=seed)
        cluster_ids, cluster_sizes = np.unique(labels, return_counts=True)
        centres = [
            int(np.flatnonzero(labels == cid)[nearest_to_mean(inside[labels == cid])])
            for cid in cluster_ids[np.argsort(-cluster_sizes, kind="stable")]
        ]
        picks, _ = farthest_first(inside, int(share), seeds=np.array(centres, dtype=np.int64))
        if refine:
            picks = medoid_refine(inside, picks)
        cell, _ = nearest(inside, inside[picks])
        weight = np.bincount(cell, minlength=len(picks))
        for rnd, (p, w) in enumerate(zip(picks, weight, strict=True)):
            rows.append((rnd, int(gid), int(members[p]), float(w)))
    rows.sort()
    return Picks(
        indices=np.array([r[2] for r in rows], dtype=np.int64),
        scores=np.array([r[3] for r in rows], dtype=np.float64),
    )
