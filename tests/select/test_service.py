"""The three selections over a store built with SQL: stored, reproducible, listed by the view."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dynosaur.errors import UsageError
from dynosaur.select import (
    CORESET_FRACTION,
    LEARNING_PERCENTAGE_FRACTION,
    SelectionError,
    get_selection,
    list_selections,
    member_ids,
    method_for,
    select,
    select_coreset,
    select_learning_percentage,
    select_replay,
)
from dynosaur.settings import Settings
from tests.curate.factory import StoreFactory
from tests.select.factory import (
    ARITHMETIC,
    CHEMISTRY,
    SENTIMENT,
    SUMMARY,
    TRANSLATION,
    TaskRows,
    add_batch,
)

pytestmark = pytest.mark.select


def _view(engine: Engine, name: str) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT * FROM selected_instance WHERE selection_name = :n ORDER BY rank"),
            {"n": name},
        ).mappings()
        return [dict(r) for r in rows]


def test_selected_instance_view_has_the_collection_columns_plus_name_rank_score(
    factory: StoreFactory, select_store: Engine, settings: Settings
) -> None:
    add_batch(factory, 1, [SENTIMENT, TRANSLATION, ARITHMETIC])
    result = select_coreset(select_store, settings, version=1, count=4, name="core", clusters=3)
    with select_store.connect() as conn:
        collection = list(conn.execute(sa.text("SELECT * FROM collection LIMIT 0")).keys())
        selected = list(conn.execute(sa.text("SELECT * FROM selected_instance LIMIT 0")).keys())
    assert selected == [*collection, "selection_name", "rank", "score"]
    rows = _view(select_store, "core")
    assert [r["rank"] for r in rows] == [1, 2, 3, 4]
    assert result.selection.instances == result.selection.instances_selected == 4
    assert len({r["task_id"] for r in rows}) == 3  # three clusters, one pick each at least


def test_rerun_with_the_same_inputs_is_a_no_op_and_other_inputs_need_replace(
    factory: StoreFactory, select_store: Engine, settings: Settings
) -> None:
    add_batch(factory, 1, [SENTIMENT, TRANSLATION, ARITHMETIC, SUMMARY])
    first = select_coreset(select_store, settings, version=1, fraction=0.2, name="c", seed=1)
    members = member_ids(select_store, "c")
    assert len(members) == first.selection.instances_selected == 4
    again = select_coreset(select_store, settings, version=1, fraction=0.2, name="c", seed=1)
    assert again.selection.reused and again.selection.created_at == first.selection.created_at
    assert again.summary.counts == {("reused", None): 4} and "embedded" not in again.summary.figures
    assert member_ids(select_store, "c") == members  # the stored members, untouched
    with pytest.raises(SelectionError, match="--replace"):
        select_coreset(select_store, settings, version=1, fraction=0.4, name="c", seed=1)
    replaced = select_coreset(
        select_store, settings, version=1, fraction=0.4, name="c", seed=1, replace=True
    )
    assert not replaced.selection.reused and replaced.selection.instances_selected == 8
    assert [s.name for s in list_selections(select_store)] == ["c"]


def test_same_inputs_under_another_name_give_the_same_members(
    factory: StoreFactory, select_store: Engine, settings: Settings
) -> None:
    add_batch(factory, 1, [SENTIMENT, TRANSLATION, ARITHMETIC, SUMMARY, CHEMISTRY])
    kwargs = dict(version=1, count=7, clusters=3, seed=3)
    select_coreset(select_store, settings, name="a", **kwargs)
    select_coreset(select_store, settings, name="b", **kwargs)
    assert member_ids(select_store, "a") == member_ids(select_store, "b")
    assert len(member_ids(select_store, "a")) == 7


def test_coreset_per_task_takes_from_every_task_and_default_names_describe_it(
    factory: StoreFactory, select_store: Engine, settings: Settings
) -> None:
    batch = add_batch(factory, 1, [SENTIMENT, TRANSLATION, ARITHMETIC, SUMMARY, CHEMISTRY])
    result = select_coreset(select_store, settings, version=1, fraction=0.2, per="task")
    assert result.selection.name == "coreset-v1-0.2-task-s0"
    rows = _view(select_store, result.selection.name)
    assert {r["task_id"] for r in rows} == set(batch.task_ids)
    assert len(rows) == round(0.2 * 26)


def test_coreset_of_one_category_reads_only_that_category(
    factory: StoreFactory, select_store: Engine, settings: Settings
) -> None:
    batch = add_batch(factory, 1, [SENTIMENT, ARITHMETIC, CHEMISTRY])  # two question-answering
    result = select_coreset(
        select_store, settings, version=1, fraction=0.5, category="question-answering"
    )
    assert result.selection.pool_size == 11
    rows = _view(select_store, result.selection.name)
    assert len(rows) == 6 and {r["task_id"] for r in rows} <= set(batch.task_ids[1:])
    with pytest.raises(SelectionError, match="no instances in task category"):
        select_coreset(select_store, settings, version=1, count=1, category="nope")


def test_a_version_that_is_not_published_is_refused(
    factory: StoreFactory, select_store: Engine, settings: Settings
) -> None:
    add_batch(factory, 1, [SENTIMENT])
    add_batch(factory, None, [TRANSLATION])  # still building: not a version
    with pytest.raises(SelectionError, match=r"version 2 .* not published .* latest is 1"):
        select_coreset(select_store, settings, version=2, count=1)
    result = select_coreset(select_store, settings, version=1, fraction=1.0)
    assert result.selection.pool_size == len(SENTIMENT.rows)


def test_learning_percentage_keeps_the_hardest_of_every_cluster_and_reuses_its_scoring(
    factory: StoreFactory, select_store: Engine, settings: Settings, tiny_scorer: Path
) -> None:
    add_batch(factory, 1, [SENTIMENT, TRANSLATION, ARITHMETIC, SUMMARY, CHEMISTRY])
    settings.scorer_model = str(tiny_scorer)
    settings.scorer_learning_rate = 3e-3
    settings.scorer_batch_size = 4
    five = select_learning_percentage(
        select_store, settings, version=1, fraction=0.2, clusters=4, name="lp5"
    )
    assert five.summary.figures["scoring_reused"] == 0
    assert five.selection.instances_selected == 5
    ten = select_learning_percentage(
        select_store, settings, version=1, fraction=0.4, clusters=4, name="lp10"
    )
    assert ten.summary.figures["scoring_reused"] == 1  # no second training
    one = select_learning_percentage(
        select_store, settings, version=1, fraction=0.2, clusters=4, score="lp_one_epoch"
    )
    assert one.summary.figures["scoring_reused"] == 1  # the first epoch of the 3-epoch run
    with select_store.connect() as conn:
        runs = conn.execute(sa.text("SELECT count(*) FROM scoring_run")).scalar_one()
        traces = conn.execute(
            sa.text("SELECT instance_id, perplexities FROM perplexity_trace")
        ).all()
    assert runs == 1 and len(traces) == 26 and all(len(t[1]) == 4 for t in traces)
    # The members are the lowest LP(1) per cluster: recompute LP from the stored traces.
    rows = _view(select_store, "lp5")
    lp = {i: (p[0] - p[1]) / (p[0] - p[3]) for i, p in traces}
    for r in rows:
        assert r["score"] == pytest.approx(lp[r["instance_id"]], rel=1e-4)
    assert [r["score"] for r in rows] == sorted(r["score"] for r in rows)
    assert {r["instance_id"] for r in rows} <= {
        r["instance_id"] for r in _view(select_store, "lp10")
    }


def test_random_per_cluster_baseline_needs_no_scorer_and_matches_cluster_counts(
    factory: StoreFactory, select_store: Engine, settings: Settings
) -> None:
    add_batch(factory, 1, [SENTIMENT, TRANSLATION, ARITHMETIC, SUMMARY, CHEMISTRY])
    result = select_learning_percentage(
        select_store, settings, version=1, count=6, clusters=6, baseline=True, seed=2
    )
    assert result.selection.method == "random_per_cluster"
    assert result.selection.models == {"embedding": "sentence-transformers/all-MiniLM-L6-v2"}
    assert result.selection.instances_selected == 6 and result.summary.figures["clusters"] == 6
    with pytest.raises(UsageError, match="needs a scorer model"):
        select_learning_percentage(select_store, settings, version=1, count=6)


def _theme(instruction: str, words: list[str]) -> TaskRows:
    # The output is never the input itself (curate would reject that as answer_in_input).
    return TaskRows(instruction, [(w, f"{w[::-1]}-{len(w)}") for w in words])


def test_replay_returns_the_new_batch_plus_the_most_diverse_earlier_tasks(
    factory: StoreFactory, select_store: Engine, settings: Settings
) -> None:
    v1 = add_batch(
        factory,
        1,
        [
            _theme("Translate the English sentence into French.", ["hello", "cat"]),
            _theme("Translate the English sentence into Spanish.", ["hi", "dog"]),
            _theme("Give the chemical symbol of the element.", ["gold", "iron"]),
        ],
    )
    v2 = add_batch(
        factory,
        2,
        [
            _theme("Translate the English sentence into German.", ["bird", "tree"]),
            _theme("Write a poem about the given season.", ["winter", "spring"]),
        ],
    )
    v3 = add_batch(
        factory, 3, [_theme("Translate the English sentence into Italian.", ["sun", "moon"])]
    )
    result = select_replay(select_store, settings, version=3, tasks=2, name="rp")
    members = member_ids(select_store, "rp")
    current = [m[1] for m in members if m[2] == "current"]
    replay = [m[1] for m in members if m[2] == "replay"]
    assert current == v3.task_ids
    # Chemistry and poetry are the instructions farthest from the new translation task.
    assert set(replay) == {v1.task_ids[2], v2.task_ids[1]}
    rows = _view(select_store, "rp")
    assert len(rows) == 6 and {r["task_id"] for r in rows} == set(current + replay)
    assert result.summary.counts[("not_replayed", None)] == 3
    rand = select_replay(select_store, settings, version=3, tasks=2, strategy="random")
    assert len([m for m in member_ids(select_store, rand.selection.name) if m[2] == "replay"]) == 2
    data = select_replay(select_store, settings, version=3, tasks=4, strategy="data")
    assert data.selection.tasks_selected == 5


def test_replay_of_the_first_version_is_just_the_batch(
    factory: StoreFactory, select_store: Engine, settings: Settings
) -> None:
    v1 = add_batch(factory, 1, [SENTIMENT, TRANSLATION])
    result = select_replay(select_store, settings, version=1, tasks=3)
    assert [m[1] for m in member_ids(select_store, result.selection.name)] == v1.task_ids
    assert get_selection(select_store, result.selection.name).instances == 11
    assert result.summary.figures["earlier_tasks"] == 0


def test_one_entry_point_runs_any_method_and_none_means_the_method_s_default(
    factory: StoreFactory, select_store: Engine, settings: Settings
) -> None:
    add_batch(factory, 1, [SENTIMENT, TRANSLATION, ARITHMETIC, SUMMARY, CHEMISTRY])
    core = select(select_store, settings, method_for("coreset", fraction=None), version=1)
    assert core.selection.parameters["fraction"] == CORESET_FRACTION
    assert core.selection.instances_selected == 1  # 0.5% of 26 instances, at least one
    wrapper = select_coreset(select_store, settings, version=1)
    assert wrapper.selection.reused and wrapper.selection.name == core.selection.name
    lp = select(
        select_store,
        settings,
        method_for("learning_percentage", fraction=None, count=None, baseline=True, clusters=2),
        version=1,
    )
    assert lp.selection.parameters["fraction"] == LEARNING_PERCENTAGE_FRACTION
    assert lp.selection.name == f"random-per-cluster-v1-{LEARNING_PERCENTAGE_FRACTION:g}-s0"
    with pytest.raises(UsageError, match="unknown selection method 'hardest'"):
        method_for("hardest")
    with pytest.raises(UsageError, match="tasks"):
        method_for("replay", strategy="random")  # how many tasks to replay is required
