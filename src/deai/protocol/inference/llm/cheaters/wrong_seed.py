"""``wrong_seed``: tokens not drawn with the request's seed -- a sampled request is answered with
another seed (the host's own), a greedy one by sampling at temperature 1 -- the model and its
activations are real, only the draws are not the request's."""

from __future__ import annotations

import dataclasses

import torch

from deai.protocol.inference.llm.cheaters.base import LLM_CHEATERS, LLMHost
from deai.protocol.inference.llm.generate import generate
from deai.protocol.inference.llm.request import Generation, GenerationRequest, Sampling

__all__ = ["WrongSeed"]


@LLM_CHEATERS.register("wrong_seed")
class WrongSeed(LLMHost):
    def respond(self, model: torch.nn.Module, request: GenerationRequest) -> Generation:
        other = (request.seed + 1 + self.seed) % 2**63
        sampling = request.sampling if not request.sampling.greedy else Sampling(temperature=1.0)
        return generate(model, dataclasses.replace(request, seed=other, sampling=sampling))
