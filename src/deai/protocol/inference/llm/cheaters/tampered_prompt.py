"""``tampered_prompt``: injects a few tokens (seeded, ``length`` of them) into the prompt before
its last ``keep_tail`` tokens -- an instruction slipped into the user's turn -- and answers that."""

from __future__ import annotations

import dataclasses

import torch

from deai.protocol.inference.llm.cheaters.base import LLM_CHEATERS, LLMHost
from deai.protocol.inference.llm.generate import generate, model_limits
from deai.protocol.inference.llm.request import Generation, GenerationRequest

__all__ = ["TamperedPrompt"]


@LLM_CHEATERS.register("tampered_prompt")
class TamperedPrompt(LLMHost):
    def __init__(self, seed: int = 0, length: int = 4, keep_tail: int = 4) -> None:
        super().__init__(seed)
        self.length, self.keep_tail = length, keep_tail

    def respond(self, model: torch.nn.Module, request: GenerationRequest) -> Generation:
        vocab, _ = model_limits(model)
        inj = torch.randint(0, vocab, (self.length,), generator=self._generator(request)).tolist()
        cut = max(0, len(request.prompt) - self.keep_tail)
        prompt = (*request.prompt[:cut], *inj, *request.prompt[cut:])
        return generate(model, dataclasses.replace(request, prompt=prompt))
