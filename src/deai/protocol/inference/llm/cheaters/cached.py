"""``cached``: returns an answer (tokens and proof) computed for another prompt -- a request seen
before, modeled as the prompt with ``changed`` of its middle tokens replaced by seeded ids -- the
way a host would replay a cached answer to a similar-looking request."""

from __future__ import annotations

import dataclasses

import torch

from deai.protocol.inference.llm.cheaters.base import LLM_CHEATERS, LLMHost
from deai.protocol.inference.llm.generate import generate, model_limits
from deai.protocol.inference.llm.request import Generation, GenerationRequest

__all__ = ["Cached"]


@LLM_CHEATERS.register("cached")
class Cached(LLMHost):
    def __init__(self, seed: int = 0, changed: int = 3) -> None:
        super().__init__(seed)
        self.changed = changed

    def respond(self, model: torch.nn.Module, request: GenerationRequest) -> Generation:
        vocab, _ = model_limits(model)
        prompt = list(request.prompt)
        n = min(self.changed, len(prompt))
        start = (len(prompt) - n) // 2
        prompt[start : start + n] = torch.randint(0, vocab, (n,), generator=self._generator(request)).tolist()
        return generate(model, dataclasses.replace(request, prompt=tuple(prompt)))
