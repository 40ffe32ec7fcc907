"""The perplexity scorer with a tiny randomly initialised model: nothing is downloaded."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import numpy as np
import pytest

from dynosaur.errors import UsageError
from dynosaur.select.scorer import (
    Encoded,
    TrainingPlan,
    cpu_threads,
    encode_batch,
    load_scorer,
    make_batch,
    perplexities,
    perplexity_traces,
    prompt_text,
    scoring_batches,
    training_batches,
)
from tests.select.factory import ARITHMETIC, SENTIMENT, TRANSLATION

pytestmark = pytest.mark.select

SAMPLES = [(t.instruction, x, y) for t in (SENTIMENT, TRANSLATION, ARITHMETIC) for x, y in t.rows]


def test_labels_cover_the_response_only_and_long_samples_are_cut_to_the_window(
    tiny_scorer: Path,
) -> None:
    scorer = load_scorer(str(tiny_scorer), device="cpu")
    tok = scorer.tokenizer
    ids, starts = encode_batch(tok, SAMPLES[:2], max_tokens=512)
    prompt_len = len(tok(prompt_text(SAMPLES[0][0], SAMPLES[0][1]))["input_ids"])
    response = tok(SAMPLES[0][2], add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    assert starts[0] == prompt_len and ids[0][starts[0] :] == response
    long = [("word " * 400, "more " * 400, "answer " * 400)]
    ids, starts = encode_batch(tok, long, max_tokens=64)
    assert len(ids[0]) == 64 and starts[0] == 32  # half the window each
    ids, starts = encode_batch(tok, [("word " * 400, "", "yes")], max_tokens=16)
    assert len(ids[0]) == 16 and len(ids[0]) - starts[0] == 2  # "yes" + end of text kept


def test_perplexity_is_the_exponential_of_the_mean_response_token_loss(tiny_scorer: Path) -> None:
    import torch

    scorer = load_scorer(str(tiny_scorer), device="cpu")
    plan = TrainingPlan(batch_size=4)
    batched = perplexities(scorer, SAMPLES, plan)
    ids, starts = encode_batch(scorer.tokenizer, SAMPLES[:1], plan.max_tokens)
    with torch.inference_mode():
        logits = scorer.model(input_ids=torch.tensor(ids)).logits[0]
    logp = torch.log_softmax(logits.double(), dim=-1)
    targets = ids[0][starts[0] :]
    nll = [-logp[pos - 1, tok].item() for pos, tok in enumerate(targets, start=starts[0])]
    assert batched[0] == pytest.approx(np.exp(np.mean(nll)), rel=1e-4)


def test_training_lowers_perplexity_and_the_same_seed_gives_the_same_traces(
    tiny_scorer: Path,
) -> None:
    plan = TrainingPlan(epochs=3, batch_size=4, learning_rate=3e-3, seed=11)
    traces = perplexity_traces(load_scorer(str(tiny_scorer), device="cpu"), SAMPLES, plan)
    again = perplexity_traces(load_scorer(str(tiny_scorer), device="cpu"), SAMPLES, plan)
    assert traces.shape == (len(SAMPLES), 4)
    assert traces[:, 3].mean() < traces[:, 0].mean() / 2
    np.testing.assert_array_equal(traces, again)


def test_an_unloadable_scorer_is_a_clear_config_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot load the scorer model"):
        load_scorer(str(tmp_path / "nowhere"), device="cpu")


def test_epochs_see_every_sample_once_in_shuffled_batches_of_similar_length() -> None:
    lengths = np.random.default_rng(0).integers(5, 500, size=1000)
    encoded = Encoded([[1] * int(n) for n in lengths], [1] * len(lengths))
    plan = TrainingPlan(batch_size=8, seed=3)
    first = training_batches(encoded, plan, 1)
    rows = np.concatenate(first)
    assert sorted(rows.tolist()) == list(range(1000)) and all(len(b) <= 8 for b in first)
    assert [b.tolist() for b in training_batches(encoded, plan, 1)] == [b.tolist() for b in first]
    assert rows.tolist() != np.concatenate(training_batches(encoded, plan, 2)).tolist()
    # Padded to each batch's longest sample: far less padding than a plain shuffle.
    padded = sum(len(b) * lengths[b].max() for b in first)
    shuffled = np.random.default_rng(3).permutation(1000)
    plain = sum(8 * lengths[shuffled[i : i + 8]].max() for i in range(0, 1000, 8))
    assert padded < 0.7 * plain
    scored = scoring_batches(encoded, 32)
    assert sorted(np.concatenate(scored).tolist()) == list(range(1000))
    assert all(lengths[a].max() <= lengths[b].min() for a, b in itertools.pairwise(scored))


def test_the_output_layer_on_response_tokens_only_scores_as_the_whole_model_does(
    tiny_scorer: Path,
) -> None:
    scorer = load_scorer(str(tiny_scorer), device="cpu")
    assert scorer.head is not None  # GPT-2: the split into base model and output layer is exact
    plan = TrainingPlan(batch_size=4)
    split = perplexities(scorer, SAMPLES, plan)
    whole = perplexities(dataclasses.replace(scorer, backbone=None, head=None), SAMPLES, plan)
    np.testing.assert_allclose(split, whole, rtol=1e-5)
    # Right padding needs no attention mask: a sample scores the same alone as in any batch.
    alone = [perplexities(scorer, [s], plan)[0] for s in SAMPLES[:3]]
    np.testing.assert_allclose(split[:3], alone, rtol=1e-5)


def test_a_batch_is_cut_from_the_flat_tokens_with_the_response_positions_and_targets() -> None:
    encoded = Encoded([[5, 6, 7, 8], [9, 10]], [2, 1])
    batch = make_batch(encoded, [1, 0], pad=0)
    assert batch.input_ids.tolist() == [[9, 10, 0, 0], [5, 6, 7, 8]]
    # Row 0 (sample 1): position 0 predicts 10. Row 1 (sample 0): positions 1, 2 predict 7, 8.
    assert batch.positions.tolist() == [0, 5, 6]
    assert batch.targets.tolist() == [10, 7, 8] and batch.row.tolist() == [0, 1, 1]


def test_scoring_batches_fill_a_token_budget_with_rows_of_similar_length() -> None:
    lengths = np.random.default_rng(1).integers(5, 500, size=1000)
    encoded = Encoded([[1] * int(n) for n in lengths], [1] * len(lengths))
    batches = scoring_batches(encoded, len(encoded), tokens=4096)
    assert sorted(np.concatenate(batches).tolist()) == list(range(1000))
    assert all(len(b) * lengths[b].max() <= 4096 for b in batches)
    assert len(batches) < 1000 // 8  # short rows share a batch: far fewer than 8 rows each
    # A sample longer than the budget still gets a batch of its own.
    assert [len(b) for b in scoring_batches(Encoded([[1] * 50], [1]), 1, tokens=10)] == [1]


def test_cpu_threads_are_at_least_one_and_at_most_the_usable_cores() -> None:
    import os

    assert 1 <= cpu_threads() <= len(os.sched_getaffinity(0))
