"""Distances, farthest-first traversal and k-means on embedding matrices (numpy, scikit-learn).

Every function is deterministic for a given seed; ties are broken by the lower index.
"""

from __future__ import annotations

import numpy as np

# Rows per block when a distance matrix would be too large to hold at once (~64 MB of float32).
_BLOCK_ELEMENTS = 16_000_000
# Up to this many points k-means runs exact Lloyd iterations; above it, mini-batches.
_EXACT_KMEANS_MAX = 20_000


def nearest(points: np.ndarray, anchors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For every row of ``points``: the index of its nearest row of ``anchors``, and the distance.

    Computed in blocks, so 200K points against thousands of anchors stay within tens of MB.
    """
    points = np.asarray(points, dtype=np.float32)
    anchors = np.asarray(anchors, dtype=np.float32)
    index = np.zeros(len(points), dtype=np.int64)
    if len(anchors) == 0:
        return index, np.full(len(points), np.inf, dtype=np.float32)
    distance = np.empty(len(points), dtype=np.float32)
    anchor_sq = np.einsum("ij,ij->i", anchors, anchors)
    rows = max(1, _BLOCK_ELEMENTS // max(1, len(anchors)))
    for start in range(0, len(points), rows):
        block = points[start : start + rows]
        sq = np.einsum("ij,ij->i", block, block)[:, None] + anchor_sq[None, :]
        sq -= 2.0 * (block @ anchors.T)
        best = sq.argmin(axis=1)
        index[start : start + rows] = best
        distance[start : start + rows] = np.sqrt(np.maximum(sq[np.arange(len(block)), best], 0))
    return index, distance


def min_distances(points: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """Euclidean distance from every row of ``points`` to its nearest row of ``anchors``."""
    return nearest(points, anchors)[1]


def coverage(points: np.ndarray, selected: np.ndarray) -> float:
    """Mean distance from every point to its nearest selected point (lower covers better)."""
    return float(min_distances(points, points[np.asarray(selected, dtype=np.int64)]).mean())


def max_distance(points: np.ndarray, selected: np.ndarray) -> float:
    """The k-center objective: the largest distance from a point to its nearest selected point
    (the radius the selection covers; lower covers better)."""
    return float(min_distances(points, points[np.asarray(selected, dtype=np.int64)]).max())


def nearest_to_mean(points: np.ndarray) -> int:
    """Index of the point closest to the points' centroid (the most central one)."""
    centre = points.mean(axis=0, keepdims=True)
    return int(np.argmin(((points - centre) ** 2).sum(axis=1)))


def farthest_first(
    points: np.ndarray,
    k: int,
    *,
    anchors: np.ndarray | None = None,
    first: int | None = None,
    seeds: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy k-center: repeatedly pick the point farthest from everything picked so far.

    Without ``anchors`` or ``seeds`` the first pick is ``first`` (default: the point nearest the
    centroid); ``seeds`` (row indices) are the first picks, in order; with ``anchors`` (e.g. the
    new batch's tasks) distances start from them and every pick is the farthest from the anchors
    and the earlier picks. Returns (indices in pick order, the distance each pick had to the set
    at the time; NaN for unanchored first picks).

    One matrix-vector product per pick (squared distances from the norms), so 200K x 384
    points cost milliseconds per pick.
    """
    points = np.ascontiguousarray(points, dtype=np.float32)
    n = len(points)
    k = min(k, n)
    picks = np.empty(k, dtype=np.int64)
    radii = np.empty(k, dtype=np.float64)
    if k == 0:
        return picks, radii
    squares = np.einsum("ij,ij->i", points, points)

    def distances(i: int) -> np.ndarray:
        sq = squares + squares[i] - 2.0 * (points @ points[i])
        return np.sqrt(np.maximum(sq, 0.0, out=sq), out=sq).astype(np.float64)

    if anchors is not None and len(anchors):
        nearest = min_distances(points, anchors).astype(np.float64)
        start = 0
    else:
        if seeds is None or len(seeds) == 0:
            seeds = np.array([nearest_to_mean(points) if first is None else first])
        seeds = np.asarray(seeds, dtype=np.int64)[:k]
        nearest = np.full(n, np.inf)
        for j, seed in enumerate(seeds):
            picks[j], radii[j] = seed, np.nan
            np.minimum(nearest, distances(int(seed)), out=nearest)
        nearest[seeds] = -np.inf
        start = len(seeds)
    for i in range(start, k):
        pick = int(np.argmax(nearest))
        picks[i], radii[i] = pick, nearest[pick]
        np.minimum(nearest, distances(pick), out=nearest)
        nearest[pick] = -np.inf  # never picked twice, even among duplicates
    return picks, radii


def medoid_refine(points: np.ndarray, picks: np.ndarray, steps: int = 2) -> np.ndarray:
    """Move every pick to the point nearest the mean of its cell (the points nearest to it).

    Farthest-first spreads picks to the edges (in high dimensions, to the noisiest points); this
    keeps one pick per cell, so the spread stays, but makes each pick the most representative
    point of the region it covers. Picks stay distinct.
    """
    picks = np.asarray(picks, dtype=np.int64).copy()
    for _ in range(steps):
        cell, _ = nearest(points, points[picks])
        moved = picks.copy()
        for j in range(len(picks)):
            members = np.flatnonzero(cell == j)
            if len(members):
                centre = points[members].mean(axis=0)
                moved[j] = members[np.argmin(((points[members] - centre) ** 2).sum(axis=1))]
        if len(np.unique(moved)) < len(moved) or np.array_equal(moved, picks):
            break
        picks = moved
    return picks


def kmeans_labels(points: np.ndarray, k: int, *, seed: int) -> np.ndarray:
    """Cluster ids (0..k-1) from k-means with ``k`` clusters (at most one per point)."""
    n = len(points)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    k = max(1, min(k, n))
    if k == n:
        return np.arange(n, dtype=np.int64)
    if k == 1:
        return np.zeros(n, dtype=np.int64)
    from sklearn.cluster import KMeans, MiniBatchKMeans

    data = np.ascontiguousarray(points, dtype=np.float32)
    if n <= _EXACT_KMEANS_MAX:
        model = KMeans(n_clusters=k, n_init=1, random_state=seed)
    else:
        model = MiniBatchKMeans(n_clusters=k, n_init=1, random_state=seed, batch_size=2048)
    return model.fit_predict(data).astype(np.int64)
