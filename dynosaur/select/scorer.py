"""Perplexity traces for learning percentage: a causal LM scored before and while it trains.

Any causal LM that ``transformers`` loads by name or path can score. A sample is shown as an
Alpaca-style prompt followed by its response; perplexity counts the response tokens only (and the
end-of-text token after them). The scorer is evaluated on every sample (P0), then trained on the
whole pool for n epochs (AdamW, constant learning rate, shuffled with the seed), evaluated again
after each epoch (P1..Pn). Memory is bounded by one batch: texts are tokenised batch by batch,
and a batch holds ``batch_size x max_tokens`` tokens (and their logits). Uses CUDA when present.
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
    try:
        with quiet_loading():
            tokenizer = AutoTokenizer.from_pretrained(name)
            model: Any = AutoModelForCausalLM.from_pretrained(name)
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


def _tensors(scorer: Scorer, ids: list[list[int]], starts: list[int]) -> tuple[Any, Any, Any]:
    import torch

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
    import contextlib

    import torch

    if scorer.device.startswith("cuda"):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def perplexities(
    scorer: Scorer,
    samples: Sequence[tuple[str, str, str]],
    plan: TrainingPlan,
    progress: Progress | None = None,
    **figures: Any,
) -> np.ndarray:
    """Perplexity of each sample's response tokens under the scorer as it is now."""
    import torch
    import torch.nn.functional as F

    progress = progress or NullProgress()
    out = np.empty(len(samples), dtype=np.float64)
    # Similar lengths together: less padding, same results.
    order = sorted(range(len(samples)), key=lambda i: sum(len(x) for x in samples[i]))
    scorer.model.eval()
    with torch.inference_mode():
        for start in range(0, len(order), plan.batch_size):
            rows = order[start : start + plan.batch_size]
            ids, starts = encode_batch(
                scorer.tokenizer, [samples[i] for i in rows], plan.max_tokens
            )
            input_ids, mask, labels = _tensors(scorer, ids, starts)
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


def train_epoch(
    scorer: Scorer,
    optimizer: Any,
    samples: Sequence[tuple[str, str, str]],
    plan: TrainingPlan,
    epoch: int,
    progress: Progress | None = None,
) -> float:
    """One shuffled pass of training on every sample; returns the mean training loss."""
    import torch

    progress = progress or NullProgress()
    order = np.random.default_rng([plan.seed, epoch]).permutation(len(samples))
    scorer.model.train()
    total, steps = 0.0, 0
    for start in range(0, len(order), plan.batch_size):
        rows = order[start : start + plan.batch_size]
        ids, starts = encode_batch(scorer.tokenizer, [samples[i] for i in rows], plan.max_tokens)
        input_ids, mask, labels = _tensors(scorer, ids, starts)
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
    """[samples, epochs + 1]: P0 before training, then P1..Pn after each epoch."""
    import torch

    progress = progress or NullProgress()
    torch.manual_seed(plan.seed)
    optimizer = torch.optim.AdamW(scorer.model.parameters(), lr=plan.learning_rate)
    progress.start(len(samples) * (2 * plan.epochs + 1), f"learning percentage ({scorer.device})")
    traces = np.empty((len(samples), plan.epochs + 1), dtype=np.float64)
    traces[:, 0] = perplexities(scorer, samples, plan, progress, phase="P0")
    for epoch in range(1, plan.epochs + 1):
        train_epoch(scorer, optimizer, samples, plan, epoch, progress)
        traces[:, epoch] = perplexities(scorer, samples, plan, progress, phase=f"P{epoch}")
    progress.finish()
    if not np.isfinite(traces).all():
        raise UsageError("the scorer produced non-finite perplexities; lower the learning rate")
    return traces
