"""``truncated``: generates honestly, returns only the first ``fraction`` of the tokens (at least
one) with a proof built from exactly those tokens' states -- a host saving work on long answers."""

from __future__ import annotations

import torch

from deai.protocol.inference.llm.cheaters.base import LLM_CHEATERS, LLMHost
from deai.protocol.inference.llm.generate import decode
from deai.protocol.inference.llm.proof import build_proof
from deai.protocol.inference.llm.request import Generation, GenerationRequest

__all__ = ["Truncated"]


@LLM_CHEATERS.register("truncated")
class Truncated(LLMHost):
    def __init__(self, seed: int = 0, fraction: float = 0.5) -> None:
        super().__init__(seed)
        self.fraction = fraction

    def respond(self, model: torch.nn.Module, request: GenerationRequest) -> Generation:
        d = decode(model, [request])[0]
        keep = max(1, int(len(d.tokens) * self.fraction))
        if keep == len(d.tokens) and keep > 1:
            keep -= 1
        return Generation(d.tokens[:keep], build_proof(d.hidden[:keep], request.dtype).to_bytes())
