"""Exactness of the selection math: budgets, k-center greedy, coreset, LP, replay."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dynosaur.errors import UsageError
from dynosaur.select.budget import allocate, resolve_budget
from dynosaur.select.coreset import coreset, group_codes
from dynosaur.select.geometry import (
    coverage,
    farthest_first,
    kmeans_labels,
    max_distance,
    min_distances,
)
from dynosaur.select.learning import (
    hardest_per_cluster,
    learning_percentage,
    one_epoch_learning_percentage,
    random_per_cluster,
)
from dynosaur.select.replay import diverse_replay, mean_by_group, random_replay

pytestmark = pytest.mark.select

CORNERS = [(10.0, 10.0), (-10.0, 10.0), (10.0, -10.0), (-10.0, -10.0)]


def _square() -> np.ndarray:
    """A centre point, a cloud of interior points, and four far corners."""
    rng = np.random.default_rng(0)
    interior = rng.uniform(-3, 3, size=(40, 2))
    return np.vstack([[[0.0, 0.0]], interior, CORNERS]).astype(np.float32)


def test_k_center_greedy_starts_central_then_picks_the_extreme_points() -> None:
    points = _square()
    picks, radii = farthest_first(points, 5)
    assert tuple(points[picks[0]]) == (0.0, 0.0) or np.linalg.norm(points[picks[0]]) < 0.5
    assert {tuple(points[i]) for i in picks[1:]} == set(CORNERS)
    assert np.isnan(radii[0]) and (radii[1:] > 13).all()  # every corner is far from the rest


def test_k_center_greedy_from_anchors_picks_what_is_farthest_from_them() -> None:
    points = np.array([[0, 0], [1, 0], [5, 0], [9, 0], [10, 0]], dtype=np.float32)
    picks, radii = farthest_first(points, 2, anchors=np.array([[0, 0]], dtype=np.float32))
    assert list(picks) == [4, 2]  # 10 is farthest from the anchor; then 5, midway
    assert radii.tolist() == pytest.approx([10.0, 5.0])


def test_k_center_greedy_never_picks_a_point_twice_even_among_duplicates() -> None:
    points = np.zeros((6, 3), dtype=np.float32)
    picks, _ = farthest_first(points, 6)
    assert sorted(picks.tolist()) == list(range(6))


def test_min_distances_match_brute_force_across_blocks(monkeypatch) -> None:
    import dynosaur.select.geometry as geometry

    monkeypatch.setattr(geometry, "_BLOCK_ELEMENTS", 7)  # force many small blocks
    rng = np.random.default_rng(1)
    points, anchors = rng.normal(size=(23, 5)), rng.normal(size=(4, 5))
    brute = np.linalg.norm(points[:, None] - anchors[None], axis=2).min(axis=1)
    assert min_distances(points, anchors) == pytest.approx(brute, abs=1e-4)


@pytest.mark.parametrize(
    ("pool", "fraction", "expected"),
    [
        (1000, 0.005, 5),
        (1099, 0.005, 5),
        (1100, 0.005, 6),
        (10, 0.005, 1),
        (3, 1.0, 3),
        (0, 0.5, 0),
    ],
)
def test_fraction_budget_rounds_half_up_and_never_leaves_a_pool_empty_handed(
    pool: int, fraction: float, expected: int
) -> None:
    assert resolve_budget(pool, fraction=fraction) == expected


def test_count_budget_is_capped_by_the_pool_and_bad_budgets_are_refused() -> None:
    assert resolve_budget(7, count=3) == 3
    assert resolve_budget(7, count=30) == 7
    for bad in (
        {"fraction": 0.0},
        {"fraction": 1.5},
        {"count": 0},
        {},
        {"fraction": 0.1, "count": 1},
    ):
        with pytest.raises(UsageError):
            resolve_budget(10, **bad)


def test_allocate_is_proportional_with_at_least_one_per_non_empty_group() -> None:
    assert allocate([80, 15, 5, 0], 10, min_each=1).tolist() == [7, 2, 1, 0]
    assert allocate([80, 15, 5], 10).tolist() == [8, 2, 0]
    assert allocate([5, 9, 2], 2, min_each=1).tolist() == [1, 1, 0]  # too small: largest first
    assert allocate([2, 2], 50, min_each=1).tolist() == [2, 2]


@given(
    sizes=st.lists(st.integers(min_value=0, max_value=60), min_size=1, max_size=25),
    budget=st.integers(min_value=0, max_value=400),
    min_each=st.sampled_from([0, 1]),
)
def test_allocate_adds_up_exactly_and_respects_sizes(
    sizes: list[int], budget: int, min_each: int
) -> None:
    parts = allocate(sizes, budget, min_each=min_each)
    sizes_arr = np.array(sizes)
    assert parts.sum() == min(budget, sizes_arr.sum())
    assert (parts >= 0).all() and (parts <= sizes_arr).all()
    nonempty = sizes_arr > 0
    if min_each and budget >= nonempty.sum():
        assert (parts[nonempty] >= 1).all()


def _blobs(n_per: list[int], dim: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=10, size=(len(n_per), dim))
    points = np.vstack([c + rng.normal(size=(n, dim)) for c, n in zip(centres, n_per, strict=True)])
    labels = np.repeat(np.arange(len(n_per)), n_per)
    return points.astype(np.float32), labels


def test_coreset_size_equals_the_request_and_every_cluster_contributes() -> None:
    points, truth = _blobs([300, 120, 40, 10, 3])
    picks = coreset(points, 20, clusters=5, seed=0)
    assert len(picks) == 20 and len(set(picks.indices.tolist())) == 20
    assert set(truth[picks.indices].tolist()) == {0, 1, 2, 3, 4}
    # Score: the points each pick stands for; the cells of all picks partition the pool.
    assert picks.scores.sum() == len(points) and (picks.scores >= 1).all()


def test_plain_coreset_is_k_center_greedy_and_refining_keeps_one_pick_per_cell() -> None:
    points = _square()
    plain = coreset(points, 5, clusters=1, seed=0, refine=False)
    assert {tuple(points[i]) for i in plain.indices[1:]} == set(CORNERS)
    refined = coreset(points, 5, clusters=1, seed=0, refine=True)
    assert len(set(refined.indices.tolist())) == 5
    # The corner cells hold only their corner, so the corners stay; the centre stays central.
    assert {tuple(points[i]) for i in refined.indices} >= set(CORNERS)


def test_coreset_per_group_shares_the_budget_by_group_size() -> None:
    points, _ = _blobs([50, 50], seed=3)
    groups = group_codes(["a"] * 75 + ["b"] * 25, 100)
    picks = coreset(points, 8, clusters=3, seed=0, groups=groups)
    chosen = groups[picks.indices]
    assert (chosen == 0).sum() == 6 and (chosen == 1).sum() == 2


def test_same_seed_same_coreset_and_it_covers_better_than_random() -> None:
    points, _ = _blobs([400, 250, 150, 100, 60, 40], dim=16, seed=5)
    first = coreset(points, 30, clusters=10, seed=7)
    again = coreset(points, 30, clusters=10, seed=7)
    assert first.indices.tolist() == again.indices.tolist()
    rng = np.random.default_rng(0)
    random_cover = np.mean(
        [coverage(points, rng.choice(len(points), 30, replace=False)) for _ in range(5)]
    )
    assert coverage(points, first.indices) < random_cover


def test_coreset_beats_random_on_the_k_center_objective_and_refining_trades_it_for_the_mean() -> (
    None
):
    # Uneven blobs: random picks (and picks shared out by cluster size) miss the small ones.
    points, _ = _blobs([900, 400, 150, 30, 10, 5, 3, 2], dim=16, seed=11)
    rng = np.random.default_rng(0)
    randoms = [rng.choice(len(points), 40, replace=False) for _ in range(5)]
    random_max = np.mean([max_distance(points, r) for r in randoms])
    random_mean = np.mean([coverage(points, r) for r in randoms])
    plain = coreset(points, 40, seed=0)
    refined = coreset(points, 40, seed=0, refine=True)
    assert max_distance(points, plain.indices) < 0.9 * random_max
    assert coverage(points, refined.indices) < coverage(points, plain.indices) < random_mean
    assert max_distance(points, refined.indices) >= max_distance(points, plain.indices)


def test_seeded_k_center_starts_from_the_seeds_then_goes_farthest() -> None:
    points = np.array([[0.0], [1.0], [2.0], [10.0], [11.0], [30.0]], dtype=np.float32)
    picks, radii = farthest_first(points, 4, seeds=np.array([1, 4]))
    # 30 is 19 from 11; then 0, 2 and 10 are each 1 away: a tie goes to the lower index.
    assert picks.tolist() == [1, 4, 5, 0]
    assert np.isnan(radii[:2]).all() and radii[2] == pytest.approx(19.0)


def test_kmeans_labels_are_deterministic_and_capped_by_the_pool() -> None:
    points, _ = _blobs([30, 30], seed=2)
    assert kmeans_labels(points, 4, seed=1).tolist() == kmeans_labels(points, 4, seed=1).tolist()
    assert kmeans_labels(points[:3], 10, seed=0).tolist() == [0, 1, 2]


@pytest.mark.parametrize(
    ("trace", "lp", "one_epoch"),
    [
        ([10.0, 6.0, 4.0, 2.0], 0.5, 0.4),  # half of the total drop in epoch 1
        ([10.0, 2.0, 2.0, 2.0], 1.0, 0.8),  # everything learnt in epoch 1: easy
        ([10.0, 9.0, 5.0, 1.0], 1 / 9, 0.1),  # learnt late: hard
        ([7.0, 7.0, 7.0, 7.0], 0.0, 0.0),  # nothing learnt: P0 = Pn
        ([7.0, 5.0, 9.0, 7.0], 0.0, 2 / 7),  # P0 = Pn after a detour
        ([4.0, 6.0, 5.0], 2.0, -0.5),  # got worse, then partly recovered
    ],
)
def test_learning_percentage_formulas_on_hand_made_traces(
    trace: list[float], lp: float, one_epoch: float
) -> None:
    traces = np.array([trace])
    assert learning_percentage(traces)[0] == pytest.approx(lp)
    assert one_epoch_learning_percentage(traces)[0] == pytest.approx(one_epoch)


def test_learning_percentage_needs_two_perplexities() -> None:
    with pytest.raises(ValueError):
        learning_percentage(np.array([[3.0]]))


def test_hardest_per_cluster_takes_the_lowest_scores_and_every_cluster_gives_one() -> None:
    labels = np.array([0] * 10 + [1] * 3 + [2] * 1 + [5] * 6)
    scores = np.arange(20, dtype=np.float64)[::-1].copy()  # later rows are harder
    picks = hardest_per_cluster(scores, labels, 6)
    assert len(picks) == 6
    assert set(labels[picks.indices].tolist()) == {0, 1, 2, 5}
    for cid in (0, 1, 2, 5):
        inside = np.flatnonzero(labels == cid)
        taken = [i for i in picks.indices if labels[i] == cid]
        assert sorted(taken) == sorted(inside[np.argsort(scores[inside])][: len(taken)].tolist())
    assert list(picks.scores) == sorted(picks.scores)  # ranked hardest first


def test_random_per_cluster_takes_as_many_per_cluster_and_is_seeded() -> None:
    labels = np.array([0] * 50 + [1] * 30 + [2] * 2)
    hard = hardest_per_cluster(np.random.default_rng(0).random(82), labels, 9)
    rand = random_per_cluster(labels, 9, seed=4)
    per = np.bincount(labels[hard.indices], minlength=3).tolist()
    assert np.bincount(labels[rand.indices], minlength=3).tolist() == per
    assert rand.indices.tolist() == random_per_cluster(labels, 9, seed=4).indices.tolist()
    assert rand.indices.tolist() != random_per_cluster(labels, 9, seed=5).indices.tolist()


def test_diverse_replay_prefers_tasks_far_from_the_new_batch_and_from_each_other() -> None:
    current = np.array([[1.0, 0.0, 0.0]], dtype=np.float32)
    candidates = np.array(
        [[0.99, 0.1, 0.0], [0.0, 1.0, 0.0], [0.0, 0.98, 0.2], [0.0, 0.0, 1.0]], dtype=np.float32
    )
    picks = diverse_replay(candidates, current, 2)
    chosen = set(picks.indices.tolist())
    assert 3 in chosen and 0 not in chosen  # never the near-copy of the new batch's task
    assert len(chosen & {1, 2}) == 1  # and never two near-identical instructions
    assert random_replay(4, 9, seed=0).indices.size == 4


def test_mean_by_group_gives_each_task_its_normalised_mean_vector() -> None:
    vectors = np.array([[1, 0], [0, 1], [3, 0], [5, 5]], dtype=np.float32)
    means = mean_by_group(vectors, np.array([7, 7, 9, 4]), np.array([9, 7, 8]))
    assert means[0].tolist() == pytest.approx([1.0, 0.0])
    assert means[1].tolist() == pytest.approx([2**-0.5, 2**-0.5])
    assert means[2].tolist() == [0.0, 0.0]  # a task with no instances
