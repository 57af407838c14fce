"""A GPT-style decoder language model: Hugging Face's GPT-2 classes built from a config.

``GPT(in_features, num_classes, n_embd=128, n_layer=4, n_head=4, dropout=0.0)`` is a
``GPT2LMHeadModel`` with a context of ``in_features`` tokens (``n_positions``) and a vocabulary of
``num_classes`` tokens; the input and output embeddings are tied. ``model(x)`` with token ids
``x`` int64 ``[B, T]`` (``T <= in_features``) returns the next-token logits ``[B, T, V]`` as a
tensor. ``dropout`` applies to embeddings, residuals and attention weights (GPT-2's three rates).
With the defaults and a vocabulary of 256 (bytes) it has 842,496 parameters at ``T = 128``.

Nothing is downloaded: the weights are initialized locally (seeded by
:func:`~deai.learn.models.base.build_model`), and ``HF_HUB_OFFLINE=1`` is set before transformers
is imported. :func:`deai.learn.export.export_model` writes it as a folder that
``transformers.AutoModelForCausalLM.from_pretrained`` loads outside deai.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import torch
from torch import nn

from deai.learn.errors import ModelError
from deai.learn.models.base import MODELS

if TYPE_CHECKING:
    from transformers import GPT2LMHeadModel

__all__ = ["GPT"]


@MODELS.register("gpt")
class GPT(nn.Module):
    """A GPT-2 decoder; ``self.net`` is the ``transformers.GPT2LMHeadModel`` (see the module docstring)."""

    net: GPT2LMHeadModel

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        n_embd: int = 128,
        n_layer: int = 4,
        n_head: int = 4,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if n_embd % n_head:
            raise ModelError(f"gpt: n_embd ({n_embd}) must be a multiple of n_head ({n_head})")
        if not 0.0 <= dropout < 1.0:
            raise ModelError(f"gpt: dropout must be in [0, 1), got {dropout}")
        if n_layer > 64 or n_embd > 8192:
            raise ModelError("gpt: at most 64 layers of width 8192")
        # Imported here, not at module level: transformers takes seconds to import, and importing
        # the model registry must stay fast for everything that never builds a language model.
        os.environ["HF_HUB_OFFLINE"] = "1"
        from transformers import GPT2Config, GPT2LMHeadModel

        config = GPT2Config(
            vocab_size=num_classes,
            n_positions=in_features,
            n_embd=n_embd,
            n_layer=n_layer,
            n_head=n_head,
            resid_pdrop=dropout,
            embd_pdrop=dropout,
            attn_pdrop=dropout,
            tie_word_embeddings=True,
            # GPT-2's defaults name token 50256, outside a small vocabulary; a tokenizer exported
            # beside the model carries its own special tokens.
            bos_token_id=None,
            eos_token_id=None,
            use_cache=False,
        )
        self.net = GPT2LMHeadModel(config)
        self.context = in_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2 or x.shape[1] > self.context:
            raise ModelError(
                f"gpt: input must be token ids [B, T] with T <= {self.context}, got {tuple(x.shape)}"
            )
        return self.net(input_ids=x, use_cache=False).logits
