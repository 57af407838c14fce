"""``finetuned``: a slightly different model -- every weight moved by seeded Gaussian noise of
``scale`` (default 1 %) times that tensor's standard deviation, the size of a short fine-tune."""

from __future__ import annotations

import torch

from deai.protocol.inference.llm.cheaters.base import LLM_CHEATERS, LLMHost, copy_model

__all__ = ["Finetuned"]


@LLM_CHEATERS.register("finetuned")
class Finetuned(LLMHost):
    def __init__(self, seed: int = 0, scale: float = 0.01) -> None:
        super().__init__(seed)
        self.scale = scale

    def derive(self, model: torch.nn.Module) -> torch.nn.Module:
        m = copy_model(model)
        gen = torch.Generator().manual_seed(self.seed)
        with torch.no_grad():
            for p in m.parameters():
                noise = torch.randn(p.shape, generator=gen, dtype=torch.float32)
                p.add_((noise * float(p.float().std()) * self.scale).to(p.dtype))
        return m
