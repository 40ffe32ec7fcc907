"""A tiny, randomly initialised GPT-2 scorer with a word-level tokenizer built from given texts.

Nothing is downloaded: the tests and ``bench/selection.py`` use it to exercise learning percentage
end to end. It learns quickly, not well; real selections use a pretrained scorer.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from dynosaur.select.embed import quiet_loading

SPECIAL_TOKENS = ("<unk>", "<pad>", "<eos>")


def make_tiny_scorer(
    texts: Iterable[str],
    folder: Path,
    *,
    layers: int = 2,
    dim: int = 64,
    heads: int = 2,
    context: int = 512,
    vocab_size: int = 4000,
    embedding_rows: int | None = None,
    dropout: float = 0.0,
    activation: str = "gelu_pytorch_tanh",
    seed: int = 0,
) -> Path:
    """Build, save and return a folder ``transformers`` loads with ``AutoModelForCausalLM``.

    ``embedding_rows`` pads the model's vocabulary (e.g. to GPT-2's 50,257) to reach a given
    model size; the tokenizer only ever emits its own ids. By default the model trains without
    dropout (like Pythia, Llama or Qwen; GPT-2 itself has 0.1) and its GELU is PyTorch's fused
    tanh approximation (GPT-2's ``gelu_new`` is the same function in separate operations): on
    a CPU, drawing dropout masks and unfused element-wise steps cost more than the matrix
    products of a model this small.
    """
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    backend = Tokenizer(models.WordLevel(unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordLevelTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS))
    backend.train_from_iterator(texts, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="<unk>", pad_token="<pad>", eos_token="<eos>"
    )
    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=max(backend.get_vocab_size(), embedding_rows or 0),
        n_positions=context,
        n_embd=dim,
        n_layer=layers,
        n_head=heads,
        resid_pdrop=dropout,
        embd_pdrop=dropout,
        attn_pdrop=dropout,
        activation_function=activation,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    folder.mkdir(parents=True, exist_ok=True)
    with quiet_loading():
        GPT2LMHeadModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
