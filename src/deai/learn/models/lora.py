"""LoRA fine-tuning of a named pretrained base with PEFT: only the adapters train and travel.

``LoRACausalLM(in_features, num_classes, base, r=8, alpha=16, dropout=0.0,
target_modules=("q_proj", "v_proj"), digest=None)`` loads the base named ``base``
(:mod:`deai.learn.pretrained`; a name, never a path) and wraps it with PEFT's LoRA: each target
linear layer ``W`` becomes ``W + (alpha / r) * B @ A`` with ``A`` ``[r, in]`` (seeded Kaiming init)
and ``B`` ``[out, r]`` (zeros, so the untrained model is the base). The base's weights are frozen
(``requires_grad=False``): the trainable parameters are exactly the adapters, which is what the
state vector of :mod:`deai.learn.training` holds, so only adapters travel, are aggregated and are
verified. ``dropout`` is LoRA's dropout on the adapter input.

- ``in_features`` is the context length ``T`` (at most the base's ``max_position_embeddings``);
  ``num_classes`` must equal the base's vocabulary size (a :class:`ModelError` otherwise).
- ``digest``: the SHA-256 of the base's weights (:func:`deai.learn.pretrained.base_digest`); a
  machine whose base has other weights refuses to build the model.
- On the ``meta`` device (parameter counting) only the base's config is read, never its weights.
- ``model(x)`` with ``x`` int64 ``[B, T]`` returns the logits tensor ``[B, T, V]``.

For SmolLM2-135M with the defaults the adapters are 460,800 parameters (1.8 MB in float32), 0.34%
of the model. :func:`adapter_state` / :func:`set_adapter_state` read and write them by name;
:func:`deai.learn.export.export_model` writes them as a PEFT adapter folder.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import nn

from deai.learn.errors import ModelError
from deai.learn.models.base import MODELS
from deai.learn.pretrained import base_config, load_base

if TYPE_CHECKING:
    from peft import PeftModel

__all__ = ["LoRACausalLM", "adapter_state", "set_adapter_state"]


@MODELS.register("lora")
class LoRACausalLM(nn.Module):
    """A pretrained causal LM with LoRA adapters; ``self.peft`` is the ``peft.PeftModel``
    (see the module docstring)."""

    peft: PeftModel

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        base: str,
        r: int = 8,
        alpha: int = 16,
        dropout: float = 0.0,
        target_modules: Sequence[str] = ("q_proj", "v_proj"),
        digest: str | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(base, str):
            raise ModelError("lora: base must be the name of a pretrained base")
        if not isinstance(r, int) or not 1 <= r <= 1024:
            raise ModelError(f"lora: rank r must be in [1, 1024], got {r}")
        if not isinstance(alpha, int) or not 1 <= alpha <= 65536:
            raise ModelError(f"lora: alpha must be an integer in [1, 65536], got {alpha!r}")
        if not 0.0 <= dropout < 1.0:
            raise ModelError(f"lora: dropout must be in [0, 1), got {dropout}")
        if not target_modules:
            raise ModelError("lora: target_modules names at least one layer (e.g. q_proj)")
        config = base_config(base)
        vocab = int(config.vocab_size)
        if num_classes != vocab:
            raise ModelError(
                f"lora: base {base!r} has a vocabulary of {vocab} tokens, the task says {num_classes}"
            )
        longest = getattr(config, "max_position_embeddings", None)
        if isinstance(longest, int) and in_features > longest:
            raise ModelError(
                f"lora: base {base!r} takes at most {longest} tokens, the task says {in_features}"
            )
        os.environ["HF_HUB_OFFLINE"] = "1"
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModelForCausalLM

        if torch.get_default_device().type == "meta":
            # Counting parameters: the architecture from the config, no weights read.
            model = AutoModelForCausalLM.from_config(config)
        else:
            model = load_base(base, digest=digest)
        lora = LoraConfig(
            r=r,
            lora_alpha=alpha,
            lora_dropout=dropout,
            target_modules=list(target_modules),
            bias="none",
            task_type="CAUSAL_LM",
        )
        try:
            self.peft = get_peft_model(model, lora)
        except ValueError as exc:  # e.g. a target module the base does not have
            raise ModelError(f"lora: cannot wrap base {base!r}: {exc}") from exc
        # Exported adapters name the base by its deai name, not a local folder of this machine.
        self.peft.peft_config["default"].base_model_name_or_path = base
        self.base = base
        self.context = in_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2 or x.shape[1] > self.context:
            raise ModelError(
                f"lora: input must be token ids [B, T] with T <= {self.context}, got {tuple(x.shape)}"
            )
        return self.peft(input_ids=x, use_cache=False).logits


def adapter_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The trainable tensors (the adapters of a :class:`LoRACausalLM`) by parameter name, detached copies."""
    return {k: p.detach().clone() for k, p in model.named_parameters() if p.requires_grad}


def set_adapter_state(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load :func:`adapter_state`'s output into ``model``: the same names and shapes, nothing else."""
    params = {k: p for k, p in model.named_parameters() if p.requires_grad}
    if set(state) != set(params):
        missing, extra = sorted(set(params) - set(state)), sorted(set(state) - set(params))
        raise ModelError(
            f"adapter state differs from the model's adapters: missing {missing[:3]}, extra {extra[:3]}"
        )
    with torch.no_grad():
        for k, p in params.items():
            if state[k].shape != p.shape:
                raise ModelError(f"adapter {k!r}: shape {tuple(state[k].shape)} != {tuple(p.shape)}")
            p.copy_(state[k])
