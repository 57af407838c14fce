"""``other_model``: serves a cheaper model with the same tokenizer -- by default the real model
with its upper half of decoder blocks removed (or any ``substitute`` model given)."""

from __future__ import annotations

from typing import Any

import torch

from deai.protocol.inference.llm.cheaters.base import LLM_CHEATERS, LLMHost, copy_model, decoder_layers

__all__ = ["OtherModel"]


@LLM_CHEATERS.register("other_model")
class OtherModel(LLMHost):
    def __init__(self, seed: int = 0, substitute: torch.nn.Module | None = None) -> None:
        super().__init__(seed)
        self.substitute = substitute

    def derive(self, model: torch.nn.Module) -> torch.nn.Module:
        if self.substitute is not None:
            return self.substitute
        cheap = copy_model(model)
        layers = decoder_layers(cheap)
        keep = max(1, len(layers) // 2)
        del layers[keep:]
        cfg: Any = cheap.config
        for attr in ("num_hidden_layers", "n_layer"):
            if hasattr(cfg, attr):
                setattr(cfg, attr, keep)
        if isinstance(getattr(cfg, "layer_types", None), list):
            cfg.layer_types = cfg.layer_types[:keep]
        return cheap
