"""Perplexity traces for learning percentage: a causal LM scored before and while it trains.

Any causal LM that ``transformers`` loads by name or path can score. A sample is shown as an
Alpaca-style prompt followed by its response; perplexity counts the response tokens only (and the
end-of-text token after them). The scorer is evaluated on every sample (P0), then trained on the
whole pool for n epochs (AdamW, constant learning rate, shuffled with the seed), evaluated again
after each epoch (P1..Pn). Samples are tokenised once for every pass; batches are padded to
their longest sample (not to the context) and hold samples of similar length (scoring: sorted
by length; training: a seeded shuffle, length-sorted within windows), so little compute goes to
padding (no attention mask: padding is on the right of a causal model). Training batches hold
``batch_size`` samples; scoring batches as many as fit in 4 x ``batch_size x max_tokens`` tokens.
The output layer (most of a small model's compute) runs on the response tokens only, batches are
cut from one flat token array (no loop per sample), scoring runs under ``inference_mode``, and
the CPU gets as many threads as it has idle cores. On a GPU: SDPA attention, bf16 (fp16)
autocast and ``torch.compile``.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dynosaur.errors import UsageError
from dynosaur.progress import NullProgress, Progress
from dynosaur.select.embed import pick_device, quiet_loading

PROMPT_VERSION = "alpaca-v1"


def prompt_text(instruction: str, input: str) -> str:
    """The prompt a response is scored after (Alpaca layout, the Input block only when set)."""
    text = f"### Instruction:\n{instruction.strip()}\n\n"
    if input.strip():
        text += f"### Input:\n{input.strip()}\n\n"
    return text + "### Response:\n"


@dataclass(frozen=True)
class TrainingPlan:
    """How the scorer is trained and evaluated."""

    epochs: int = 3
    batch_size: int = 8
    learning_rate: float = 2e-5
    max_tokens: int = 512
    seed: int = 0

    def to_json(self) -> dict[str, Any]:
        """Parameters as stored with a scoring run."""
        return {
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "learning_rate": self.learning_rate,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
            "prompt": PROMPT_VERSION,
        }


@dataclass
class Scorer:
    """A loaded causal LM, its tokenizer and the device it runs on.

    ``backbone`` and ``head`` split the model where that is known to be exact (the model's
    logits are ``head(backbone(ids)[0])``), so the output layer runs on response tokens only;
    ``head`` None: the whole model runs and its logits are cut afterwards.
    """

    name: str
    model: Any
    tokenizer: Any
    device: str
    backbone: Any = None
    head: Any = None
    threads: int | None = None

    @property
    def pad_id(self) -> int:
        return int(self.tokenizer.pad_token_id)


# Causal LMs whose logits are their output layer applied to the base model's last hidden state,
# nothing else (no logit scaling or soft-capping): the output layer may skip the prompt.
PLAIN_HEAD_MODELS = frozenset(
    {
        "GPT2LMHeadModel",
        "GPTNeoXForCausalLM",
        "LlamaForCausalLM",
        "MistralForCausalLM",
        "OPTForCausalLM",
        "Qwen2ForCausalLM",
        "Qwen3ForCausalLM",
    }
)


def cpu_threads() -> int:
    """Threads for the CPU: the cores this process may use, less those other processes keep
    busy (the 1-minute load average), at least one. Asking for busy cores makes every
    operation wait for the slowest thread: on a loaded machine that is several times slower
    than fewer threads."""
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = cores or 1
    return max(1, min(cores, cores - round(os.getloadavg()[0])))


class _RightPaddingIsUnmasked(logging.Filter):
    """Drops transformers' advice to pass an attention mask: batches here are padded on the
    right of a causal model, where no real token attends to padding (see
    :func:`response_losses`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "recommend passing in an `attention_mask`" not in record.getMessage()


_UNMASKED = _RightPaddingIsUnmasked()


def load_scorer(name: str, *, device: str | None = None, threads: int | None = None) -> Scorer:
    """Load the causal LM ``name`` (Hub name or local folder) and its tokenizer.

    On the CPU, torch uses ``threads`` threads (default :func:`cpu_threads`). On a GPU:
    PyTorch's fused attention (SDPA everywhere), bf16 autocast in every pass, and the base
    model compiled (``torch.compile``, shapes dynamic).
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    logging.getLogger("transformers.modeling_utils").addFilter(_UNMASKED)  # once: a set
    where = pick_device(device)
    used = None
    if where == "cpu":
        used = threads or cpu_threads()
        torch.set_num_threads(used)
    try:
        with quiet_loading():
            tokenizer = AutoTokenizer.from_pretrained(name)
            model: Any = AutoModelForCausalLM.from_pretrained(name)  # SDPA by default
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot load the scorer model {name!r}: {exc}") from exc
    if getattr(model, "loss_type", None) is None:
        model.loss_type = "ForCausalLM"  # what transformers falls back to, minus its warning
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    model = model.to(where)
    backbone = head = None
    if type(model).__name__ in PLAIN_HEAD_MODELS:
        backbone, head = model.base_model, model.get_output_embeddings()
        if where.startswith("cuda"):
            backbone = torch.compile(backbone, dynamic=True)
    return Scorer(
        name=name,
        model=model,
        tokenizer=tokenizer,
        device=where,
        backbone=backbone,
        head=head,
        threads=used,
    )


def encode_batch(
    tokenizer: Any, samples: Sequence[tuple[str, str, str]], max_tokens: int
) -> tuple[list[list[int]], list[int]]:
    """Token ids of prompt + response per sample, and where each response starts.

    Over ``max_tokens``, the response keeps at most what half the window leaves it and the
    prompt keeps its beginning (the instruction); every sample keeps one response token.
    """
    prompts = tokenizer([prompt_text(s[0], s[1]) for s in samples])["input_ids"]
    responses = tokenizer([s[2].strip() for s in samples], add_special_tokens=False)["input_ids"]
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    ids, starts = [], []
    for prompt, response in zip(prompts, responses, strict=True):
        response = list(response) + eos
        room = max(1, max_tokens - min(len(prompt), max_tokens // 2))
        response = response[:room]
        prompt = prompt[: max(1, max_tokens - len(response))]
        ids.append(list(prompt) + response)
        starts.append(len(prompt))
    return ids, starts


@dataclass(frozen=True)
class Encoded:
    """Every sample tokenised once (prompt + response ids, where the response starts), reused
    by every scoring pass and training epoch; also held as one flat array (``tokens``, with
    each sample's ``offset`` and ``length``) so a batch is cut out without a loop per sample."""

    ids: list[list[int]]
    starts: list[int]
    tokens: np.ndarray = field(init=False, repr=False, compare=False)
    offset: np.ndarray = field(init=False, repr=False, compare=False)
    length: np.ndarray = field(init=False, repr=False, compare=False)
    start: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        length = np.fromiter((len(x) for x in self.ids), dtype=np.int64, count=len(self.ids))
        offset = np.zeros(len(length), dtype=np.int64)
        np.cumsum(length[:-1], out=offset[1:])
        tokens = np.fromiter(itertools.chain.from_iterable(self.ids), np.int64, int(length.sum()))
        object.__setattr__(self, "tokens", tokens)
        object.__setattr__(self, "offset", offset)
        object.__setattr__(self, "length", length)
        object.__setattr__(self, "start", np.asarray(self.starts, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.ids)

    def lengths(self) -> np.ndarray:
        return self.length

    def subset(self, count: int) -> Encoded:
        """The first ``count`` samples."""
        return Encoded(self.ids[:count], self.starts[:count])


def encode_all(
    tokenizer: Any, samples: Sequence[tuple[str, str, str]], max_tokens: int, chunk: int = 4096
) -> Encoded:
    """:func:`encode_batch` over every sample, a chunk at a time (one tokenizer call per
    chunk: the fast tokenizer batches in Rust)."""
    ids: list[list[int]] = []
    starts: list[int] = []
    for start in range(0, len(samples), chunk):
        part_ids, part_starts = encode_batch(tokenizer, samples[start : start + chunk], max_tokens)
        ids += part_ids
        starts += part_starts
    return Encoded(ids, starts)


@dataclass(frozen=True)
class Batch:
    """Rows of :class:`Encoded` padded (on the right) to the longest of them, and where their
    response tokens are: ``positions`` (flat indices into [rows, width]) of the tokens that
    predict a response token, ``targets`` the tokens predicted, ``row`` the row of each."""

    input_ids: np.ndarray
    positions: np.ndarray
    targets: np.ndarray
    row: np.ndarray


def make_batch(encoded: Encoded, rows: Sequence[int] | np.ndarray, pad: int) -> Batch:
    """:class:`Batch` of ``rows``: numpy indexing, no loop over samples."""
    rows = np.asarray(rows, dtype=np.int64)
    length, start = encoded.length[rows], encoded.start[rows]
    width = int(length.max())
    col = np.arange(width)
    inside = col[None, :] < length[:, None]
    at = np.minimum(encoded.offset[rows][:, None] + col[None, :], max(len(encoded.tokens) - 1, 0))
    input_ids = np.where(inside, encoded.tokens[at], pad)
    # Position p predicts token p + 1: the response's tokens [start, length) are predicted from
    # positions [start - 1, length - 1).
    predicts = (col[None, :] >= start[:, None] - 1) & (col[None, :] < length[:, None] - 1)
    positions = np.flatnonzero(predicts.ravel())
    return Batch(
        input_ids=input_ids,
        positions=positions,
        targets=input_ids.ravel()[positions + 1],
        row=positions // width,
    )


def _autocast(scorer: Scorer) -> Any:
    """bf16 autocast on a GPU (fp16 where bf16 is not supported); nothing on the CPU."""
    import contextlib

    import torch

    if scorer.device.startswith("cuda"):
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    return contextlib.nullcontext()


def response_losses(scorer: Scorer, batch: Batch) -> Any:
    """Negative log-likelihood of every response token of ``batch`` (a 1-d float32 tensor in
    the order of ``batch.positions``).

    The batch is padded on the right and the model is causal, so no token attends to padding
    and no attention mask is needed (SDPA's causal kernel). The output layer runs on the
    positions that predict a response token only, not on the prompt's (most of a sample).
    """
    import torch
    import torch.nn.functional as F

    device = scorer.device
    input_ids = torch.from_numpy(batch.input_ids).to(device, non_blocking=True)
    positions = torch.from_numpy(batch.positions).to(device, non_blocking=True)
    targets = torch.from_numpy(batch.targets).to(device, non_blocking=True)
    with _autocast(scorer):
        if scorer.head is not None:
            hidden = scorer.backbone(input_ids=input_ids, use_cache=False)[0]
            logits = scorer.head(hidden.reshape(-1, hidden.shape[-1]).index_select(0, positions))
        else:
            logits = scorer.model(input_ids=input_ids, use_cache=False).logits
            logits = logits.reshape(-1, logits.shape[-1]).index_select(0, positions)
    return F.cross_entropy(logits.float(), targets, reduction="none")


# Scoring needs no gradients: its batches hold up to this many times the training batch's
# tokens (``batch_size x max_tokens``), as many rows as fit.
SCORING_BATCH_FACTOR = 4
# Training batches are drawn from windows of this many batches sorted by length (similar
# lengths together, little padding), in a shuffled order.
LENGTH_WINDOW_BATCHES = 50


def scoring_batches(encoded: Encoded, rows: int, tokens: int | None = None) -> list[np.ndarray]:
    """Rows in batches of similar length (shortest first): the same results as any order,
    with the least padding. At most ``rows`` rows, or with ``tokens``, as many rows as keep
    rows x the longest of them within ``tokens`` (at least one)."""
    order = np.argsort(encoded.lengths(), kind="stable")
    if tokens is None:
        return [order[i : i + rows] for i in range(0, len(order), rows)]
    lengths = encoded.lengths()[order]
    batches, first = [], 0
    while first < len(order):
        # Sorted ascending: the longest row of [first, last) is lengths[last - 1], and no more
        # rows than the budget holds of the shortest one can fit.
        window = lengths[first : first + max(1, tokens // max(int(lengths[first]), 1))]
        fits = np.flatnonzero(np.arange(1, len(window) + 1) * window <= tokens)
        last = first + (int(fits[-1]) + 1 if len(fits) else 1)
        batches.append(order[first:last])
        first = last
    return batches


def training_batches(encoded: Encoded, plan: TrainingPlan, epoch: int) -> list[np.ndarray]:
    """A shuffled epoch in batches of ``plan.batch_size``: a seeded permutation, cut in windows
    of :data:`LENGTH_WINDOW_BATCHES` batches sorted by length inside, and the batches of all
    windows in a seeded random order. Every sample once per epoch, little padding."""
    rng = np.random.default_rng([plan.seed, epoch])
    order = rng.permutation(len(encoded))
    lengths = encoded.lengths()
    window = plan.batch_size * LENGTH_WINDOW_BATCHES
    batches = []
    for start in range(0, len(order), window):
        part = order[start : start + window]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches += [part[i : i + plan.batch_size] for i in range(0, len(part), plan.batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def perplexities(
    scorer: Scorer,
    samples: Sequence[tuple[str, str, str]] | Encoded,
    plan: TrainingPlan,
    progress: Progress | None = None,
    **figures: Any,
) -> np.ndarray:
    """Perplexity of each sample's response tokens under the scorer as it is now."""
    import torch

    progress = progress or NullProgress()
    encoded = _encoded(scorer, samples, plan)
    out = np.empty(len(encoded), dtype=np.float64)
    scorer.model.eval()
    budget = plan.batch_size * SCORING_BATCH_FACTOR * plan.max_tokens
    with torch.inference_mode():
        for rows in scoring_batches(encoded, len(encoded), budget):
            batch = make_batch(encoded, rows, scorer.pad_id)
            nll = response_losses(scorer, batch).double().cpu().numpy()
            sums = np.bincount(batch.row, weights=nll, minlength=len(rows))
            counts = np.maximum(np.bincount(batch.row, minlength=len(rows)), 1)
            out[rows] = np.exp(np.minimum(sums / counts, 700.0))
            progress.advance(len(rows), **figures)
    return out


def _encoded(
    scorer: Scorer, samples: Sequence[tuple[str, str, str]] | Encoded, plan: TrainingPlan
) -> Encoded:
    if isinstance(samples, Encoded):
        return samples
    return encode_all(scorer.tokenizer, samples, plan.max_tokens)


def train_epoch(
    scorer: Scorer,
    optimizer: Any,
    samples: Sequence[tuple[str, str, str]] | Encoded,
    plan: TrainingPlan,
    epoch: int,
    progress: Progress | None = None,
) -> float:
    """One shuffled pass of training on every sample (the loss: the mean over the batch's
    response tokens); returns the mean training loss."""
    import torch

    progress = progress or NullProgress()
    encoded = _encoded(scorer, samples, plan)
    scorer.model.train()
    parameters = [p for p in scorer.model.parameters() if p.requires_grad]
    losses = []
    for rows in training_batches(encoded, plan, epoch):
        loss = response_losses(scorer, make_batch(encoded, rows, scorer.pad_id)).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        losses.append(loss.detach())
        progress.advance(len(rows), phase=f"train {epoch}/{plan.epochs}")
    # One device-to-host copy per epoch, not one per step.
    return float(torch.stack(losses).mean()) if losses else 0.0


def make_optimizer(scorer: Scorer, plan: TrainingPlan) -> Any:
    """AdamW at the plan's learning rate, its fused kernel (one operation per step, not a few
    per parameter tensor) on a CPU or GPU."""
    import torch

    fused = scorer.device.split(":")[0] in ("cpu", "cuda")
    return torch.optim.AdamW(scorer.model.parameters(), lr=plan.learning_rate, fused=fused)


def perplexity_traces(
    scorer: Scorer,
    samples: Sequence[tuple[str, str, str]],
    plan: TrainingPlan,
    progress: Progress | None = None,
) -> np.ndarray:
    """[samples, epochs + 1]: P0 before training, then P1..Pn after each epoch. The samples are
    tokenised once for all passes."""
    import torch

    progress = progress or NullProgress()
    torch.manual_seed(plan.seed)
    optimizer = make_optimizer(scorer, plan)
    progress.start(len(samples) * (2 * plan.epochs + 1), f"learning percentage ({scorer.device})")
    encoded = encode_all(scorer.tokenizer, samples, plan.max_tokens)
    traces = np.empty((len(samples), plan.epochs + 1), dtype=np.float64)
    traces[:, 0] = perplexities(scorer, encoded, plan, progress, phase="P0")
    for epoch in range(1, plan.epochs + 1):
        train_epoch(scorer, optimizer, encoded, plan, epoch, progress)
        traces[:, epoch] = perplexities(scorer, encoded, plan, progress, phase=f"P{epoch}")
    progress.finish()
    if not np.isfinite(traces).all():
        raise UsageError("the scorer produced non-finite perplexities; lower the learning rate")
    return traces
