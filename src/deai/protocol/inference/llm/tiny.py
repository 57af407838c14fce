"""A tiny random Llama and a byte-level chat tokenizer, built in-process from a seed: the fast
model of the tests, the calibration smoke runs and the benchmark's large-count part.

Nothing is downloaded: the tokenizer maps each UTF-8 byte to one id (ids 0-255) plus three
specials (``<pad>`` 256, ``<s>`` 257, ``</s>`` 258) and renders chats with a small Jinja template.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerFast

__all__ = ["TINY_VOCAB", "byte_tokenizer", "tiny_llama"]

TINY_VOCAB = 259
"""256 byte ids and three specials."""

_CHAT = (
    "{% for m in messages %}<s>{{ m['role'] }}\n{{ m['content'] }}</s>\n{% endfor %}"
    "{% if add_generation_prompt %}<s>assistant\n{% endif %}"
)


def byte_tokenizer() -> PreTrainedTokenizerFast:
    """A byte-level tokenizer with a chat template (no download, no merges)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {bytes([i]).decode("latin-1"): i for i in range(256)}
    vocab.update({"<pad>": 256, "<s>": 257, "</s>": 258})
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.Split(pattern="", behavior="isolated")
    tok.decoder = decoders.Fuse()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>", unk_token="<pad>"
    )
    fast.add_special_tokens({"additional_special_tokens": ["<s>", "</s>"]})
    fast.chat_template = _CHAT
    return fast


def tiny_llama(
    seed: int = 0, *, hidden: int = 64, layers: int = 2, vocab: int = TINY_VOCAB, init_std: float = 0.15
) -> PreTrainedModel:
    """A random Llama (float32, eval mode) with weights drawn from ``seed``. ``init_std`` larger
    than the usual 0.02 makes its next-token distributions peaked, like a trained model's."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        initializer_range=init_std,
        tie_word_embeddings=True,
        pad_token_id=256,
        bos_token_id=257,
        eos_token_id=258,
    )
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = LlamaForCausalLM(cfg)
    finally:
        torch.random.set_rng_state(state)
    return model.float().eval()
