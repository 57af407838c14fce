"""``edited``: generates honestly, replaces one token (at a seeded position) by another seeded
token, and rebuilds the proof from a prefill over the edited answer -- so the activations match
and only the token check can catch it (an answer steered to say something else)."""

from __future__ import annotations

import torch

from deai.protocol.inference.llm.cheaters.base import LLM_CHEATERS, LLMHost
from deai.protocol.inference.llm.generate import generate, model_limits
from deai.protocol.inference.llm.proof import build_proof
from deai.protocol.inference.llm.request import Generation, GenerationRequest
from deai.protocol.inference.llm.verify import recompute

__all__ = ["Edited"]


@LLM_CHEATERS.register("edited")
class Edited(LLMHost):
    def respond(self, model: torch.nn.Module, request: GenerationRequest) -> Generation:
        honest = generate(model, request)
        vocab, _ = model_limits(model)
        gen = self._generator(request)
        toks = list(honest.tokens)
        # never the last token: editing a stop id would be caught as a truncation instead
        at = int(torch.randint(0, max(1, len(toks) - 1), (1,), generator=gen))
        banned = {toks[at], *request.stop}
        new = int(torch.randint(0, vocab, (1,), generator=gen))
        for _ in range(vocab):  # banned holds at most 17 ids: a step or two
            if new not in banned:
                break
            new = (new + 1) % vocab
        toks[at] = new
        edited = tuple(toks)
        rec = recompute(model, request, edited)
        return Generation(edited, build_proof(rec.hidden, request.dtype).to_bytes())
