"""Perplexity traces for learning percentage: a causal LM scored before and while it trains.

Any causal LM that ``transformers`` loads by name or path can score. A sample is shown as an
Alpaca-style prompt followed by its response; perplexity counts the response tokens only (and the
end-of-text token after them). The scorer is evaluated on every sample (P0), then trained on the
whole pool for n epochs (AdamW, constant learning rate, shuffled with the seed), evaluated again
after each epoch (P1..Pn). Samples are tokenised once for every pass; batches are padded to
their longest sample (not to the context) and hold samples of similar length (scoring: sorted
by length; training: a seeded shuffle, length-sorted within windows), so little compute goes to
padding. A batch holds at most ``batch_size x max_tokens`` tokens (4x the rows when scoring).
On a GPU: SDPA attention and bf16 (fp16) autocast.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
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
    """A loaded causal LM, its tokenizer and the device it runs on."""

    name: str
    model: Any
    tokenizer: Any
    device: str


def load_scorer(name: str, *, device: str | None = None) -> Scorer:
    """Load the causal LM ``name`` (Hub name or local folder) and its tokenizer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    where = pick_device(device)
    # On a GPU: PyTorch's fused attention (SDPA), with bf16 autocast in every pass.
    extra = {"attn_implementation": "sdpa"} if where.startswith("cuda") else {}
    try:
        with quiet_loading():
            tokenizer = AutoTokenizer.from_pretrained(name)
            model: Any = AutoModelForCausalLM.from_pretrained(name, **extra)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot load the scorer model {name!r}: {exc}") from exc
    if getattr(model, "loss_type", None) is None:
        model.loss_type = "ForCausalLM"  # what transformers falls back to, minus its warning
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return Scorer(name=name, model=model.to(where), tokenizer=tokenizer, device=where)


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
    by every scoring pass and training epoch."""

    ids: list[list[int]]
    starts: list[int]

    def __len__(self) -> int:
        return len(self.ids)

    def lengths(self) -> np.ndarray:
        return np.fromiter((len(x) for x in self.ids), dtype=np.int64, count=len(self.ids))


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


def _tensors(
    scorer: Scorer, encoded: Encoded, rows: Sequence[int] | np.ndarray
) -> tuple[Any, Any, Any]:
    """Input ids, attention mask and labels of ``rows``, padded to the longest of them (not to
    the context), on the scorer's device."""
    import torch

    ids = [encoded.ids[i] for i in rows]
    starts = [encoded.starts[i] for i in rows]
    width = max(len(x) for x in ids)
    pad = scorer.tokenizer.pad_token_id
    input_ids = torch.full((len(ids), width), pad, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    labels = torch.full((len(ids), width), -100, dtype=torch.long)
    for row, (tokens, start) in enumerate(zip(ids, starts, strict=True)):
        input_ids[row, : len(tokens)] = torch.tensor(tokens)
        mask[row, : len(tokens)] = 1
        labels[row, start : len(tokens)] = input_ids[row, start : len(tokens)]
    device = scorer.device
    return input_ids.to(device), mask.to(device), labels.to(device)


def _autocast(scorer: Scorer) -> Any:
    """bf16 autocast on a GPU (fp16 where bf16 is not supported); nothing on the CPU."""
    import contextlib

    import torch

    if scorer.device.startswith("cuda"):
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    return contextlib.nullcontext()


# Scoring needs no gradients: its batches hold this many times the training batch's rows.
SCORING_BATCH_FACTOR = 4
# Training batches are drawn from windows of this many batches sorted by length (similar
# lengths together, little padding), in a shuffled order.
LENGTH_WINDOW_BATCHES = 50


def scoring_batches(encoded: Encoded, batch_size: int) -> list[np.ndarray]:
    """Rows in batches of similar length (shortest first): the same results as any order,
    with the least padding."""
    order = np.argsort(encoded.lengths(), kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


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
    import torch.nn.functional as F

    progress = progress or NullProgress()
    encoded = _encoded(scorer, samples, plan)
    out = np.empty(len(encoded), dtype=np.float64)
    scorer.model.eval()
    with torch.inference_mode():
        for rows in scoring_batches(encoded, plan.batch_size * SCORING_BATCH_FACTOR):
            input_ids, mask, labels = _tensors(scorer, encoded, rows)
            with _autocast(scorer):
                logits = scorer.model(input_ids=input_ids, attention_mask=mask).logits
            targets = labels[:, 1:]
            nll = F.cross_entropy(
                logits[:, :-1].float().transpose(1, 2), targets, ignore_index=-100, reduction="none"
            )
            counted = (targets != -100).sum(dim=1).clamp(min=1)
            mean_nll = (nll.sum(dim=1) / counted).double().cpu().numpy()
            out[rows] = np.exp(np.minimum(mean_nll, 700.0))
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
    """One shuffled pass of training on every sample; returns the mean training loss."""
    import torch

    progress = progress or NullProgress()
    encoded = _encoded(scorer, samples, plan)
    scorer.model.train()
    total, steps = 0.0, 0
    for rows in training_batches(encoded, plan, epoch):
        input_ids, mask, labels = _tensors(scorer, encoded, rows)
        with _autocast(scorer):
            loss = scorer.model(input_ids=input_ids, attention_mask=mask, labels=labels).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(scorer.model.parameters(), 1.0)
        optimizer.step()
        total, steps = total + float(loss.detach()), steps + 1
        progress.advance(len(rows), phase=f"train {epoch}/{plan.epochs}", loss=total / steps)
    return total / max(steps, 1)


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
    optimizer = torch.optim.AdamW(scorer.model.parameters(), lr=plan.learning_rate)
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
