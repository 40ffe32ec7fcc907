"""How many items a selection takes, and how a budget is shared among groups or clusters."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from dynosaur.errors import UsageError


def resolve_budget(
    pool_size: int, *, fraction: float | None = None, count: int | None = None
) -> int:
    """Items to select from a pool of ``pool_size``: ``count``, or ``fraction`` of the pool.

    A fraction is rounded half up and gives at least one item from a non-empty pool; the result
    never exceeds the pool.
    """
    if (fraction is None) == (count is None):
        raise UsageError("give the budget as a fraction or as a count, not both or neither")
    if count is not None:
        if count < 1:
            raise UsageError(f"the budget count must be at least 1, got {count}")
        return min(count, pool_size)
    assert fraction is not None
    if not 0 < fraction <= 1:
        raise UsageError(f"the budget fraction must be in (0, 1], got {fraction}")
    if pool_size == 0:
        return 0
    return min(pool_size, max(1, math.floor(fraction * pool_size + 0.5)))


def allocate(sizes: Sequence[int] | np.ndarray, budget: int, *, min_each: int = 0) -> np.ndarray:
    """Split ``budget`` among groups in proportion to their ``sizes`` (largest remainder).

    With ``min_each=1`` every non-empty group gets at least one item when the budget allows it
    (when it does not, the largest groups get one each). No group gets more than its size, and
    the parts add up to ``min(budget, sum(sizes))`` exactly. Ties go to the earlier group.
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    if (sizes < 0).any():
        raise ValueError("group sizes must be non-negative")
    budget = int(min(max(budget, 0), int(sizes.sum())))
    out = np.zeros(len(sizes), dtype=np.int64)
    if budget == 0:
        return out
    if min_each > 0:
        floor = np.minimum(sizes, min_each)
        if floor.sum() > budget:
            # Not enough for everyone: one each to the largest groups (stable order on ties).
            order = np.argsort(-sizes, kind="stable")
            out[order[:budget]] = 1
            return out
        out += floor
    capacity = sizes - out
    remaining = budget - int(out.sum())
    if remaining == 0:
        return out
    quota = remaining * capacity / capacity.sum()
    whole = np.minimum(np.floor(quota).astype(np.int64), capacity)
    out += whole
    left = remaining - int(whole.sum())
    if left:
        frac = np.where(capacity - whole > 0, quota - whole, -1.0)
        order = np.argsort(-frac, kind="stable")
        out[order[:left]] += 1
    return out
