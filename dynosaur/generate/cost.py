"""What LLM calls cost: prices, local prompt-token counts (for dry runs and budget reservations),
and the run's budget.

Prompt tokens are counted locally with OpenAI's own BPE tables when the ``bpe-openai`` package is
installed (``o200k_base`` for the gpt-4o/4.1/o-series families, ``cl100k_base`` for gpt-4 and
gpt-3.5; other models are counted with ``o200k_base`` as an approximation), plus the chat framing
OpenAI documents (3 tokens per message, 3 to prime the reply). Without the package the count is
``ceil(UTF-8 bytes / 4)`` per message plus the same framing: a rough average for English. Loading
the BPE tables costs seconds, so only dry runs and answers without usage figures count this way;
a call's budget reservation uses a cheap upper bound instead (:func:`prompt_tokens_bound`).
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from dynosaur.errors import UsageError
from dynosaur.settings import ModelPrice, Settings

TOKENS_PER_MESSAGE = 3
REPLY_PRIMING_TOKENS = 3

# OpenAI's standard-tier list prices, USD per 1M tokens (input, output): the OpenAI API pricing
# page (developers.openai.com/api/docs/pricing) as summarised by deploybase.ai's "OpenAI pricing"
# table, March 2026; cached-input and Batch discounts are not modelled (a run is charged the full
# price, an upper bound). Reasoning tokens are billed as output and are part of
# ``completion_tokens``. Dated variants (``gpt-4o-mini-2024-07-18``) take their family's price
# (Settings.price_for); DYNOSAUR_LLM_PRICES replaces the whole table.
PRICES: dict[str, ModelPrice] = {
    name: ModelPrice(input=price_in, output=price_out)
    for name, (price_in, price_out) in {
        "gpt-5.4": (2.50, 15.00),
        "gpt-5.1": (1.25, 10.00),
        "gpt-5": (1.25, 10.00),
        "gpt-5-mini": (0.25, 2.00),
        "gpt-5-nano": (0.05, 0.40),
        "gpt-4.1": (2.00, 8.00),
        "gpt-4.1-mini": (0.40, 1.60),
        "gpt-4.1-nano": (0.10, 0.40),
        "gpt-4o": (2.50, 10.00),
        "gpt-4o-mini": (0.15, 0.60),
        "o3": (2.00, 8.00),
        "o3-mini": (1.10, 4.40),
        "o4-mini": (1.10, 4.40),
        "o1": (15.00, 60.00),
        "gpt-3.5-turbo": (0.50, 1.50),
    }.items()
}


def call_cost(price: ModelPrice | None, prompt_tokens: int, completion_tokens: int) -> float:
    """USD for one call (0 when the model's price is unknown)."""
    if price is None:
        return 0.0
    return (prompt_tokens * price.input + completion_tokens * price.output) / 1_000_000


@functools.lru_cache(maxsize=8)
def _encoder(model: str) -> Callable[[str], int] | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the package's resource loading
        try:
            import bpe_openai  # ships no type hints
        except ImportError:
            return None
        try:
            encoding = bpe_openai.encoding_for_model(model)
        except Exception:  # unknown model name: count with the current default table
            encoding = bpe_openai.get_encoding("o200k_base")
    return lambda text: len(encoding.encode_ordinary(text))


def token_method(model: str) -> str:
    """How :func:`count_prompt_tokens` counts for ``model`` (shown by dry runs and the bench)."""
    return "bpe-openai" if _encoder(model) is not None else "utf8-bytes/4"


def count_text_tokens(text: str, model: str) -> int:
    """Tokens of one text for ``model`` (see the module docstring for the method)."""
    encode = _encoder(model)
    if encode is not None:
        return encode(text)
    return math.ceil(len(text.encode("utf-8")) / 4)


def count_prompt_tokens(messages: Sequence[dict[str, Any]], model: str) -> int:
    """Prompt tokens of a chat request, framing included."""
    total = REPLY_PRIMING_TOKENS
    for message in messages:
        total += TOKENS_PER_MESSAGE + count_text_tokens(str(message.get("content", "")), model)
    return total


def prompt_tokens_bound(messages: Sequence[dict[str, Any]]) -> int:
    """An upper bound of a chat request's prompt tokens, whatever the tokenizer: a BPE token
    covers at least one byte of UTF-8 text, plus the framing (cheap: no tokenizer is loaded)."""
    total = REPLY_PRIMING_TOKENS
    for message in messages:
        total += TOKENS_PER_MESSAGE + len(str(message.get("content", "")).encode("utf-8"))
    return total


def reservation(price: ModelPrice | None, prompt_tokens: int, max_tokens: int) -> float:
    """The most a call can cost: ``prompt_tokens`` (an upper bound) and every output token
    allowed."""
    return call_cost(price, prompt_tokens, max_tokens)


def run_budget(settings: Settings, budget_usd: float | None) -> float | None:
    """The run's spend cap: the argument, else the setting; None or negative means no cap."""
    budget = settings.budget_usd if budget_usd is None else budget_usd
    return None if budget is None or budget < 0 else float(budget)


def model_price(settings: Settings, model: str, budget: float | None) -> ModelPrice | None:
    """The model's price; a model without one may run only without a budget."""
    price = settings.price_for(model)
    if price is None and budget is not None:
        known = ", ".join(sorted(settings.llm_prices)) or "none"
        raise UsageError(
            f"no price is known for model {model!r}, so a budget of ${budget:g} cannot be "
            f"enforced: add it to DYNOSAUR_LLM_PRICES (known: {known}) or run without a budget "
            "(--budget -1)"
        )
    return price
