"""Cheating LLM hosts for evaluation, one per file, each declared with ``@LLM_CHEATERS.register``:

- ``other_model``: a cheaper model (the real one with half its decoder blocks removed, or any
  substitute);
- ``quantized_int8`` / ``quantized_4bit``: the real model with int8 (per channel) or 4-bit (per
  group of 32) weights;
- ``finetuned``: the real model with weights moved by 1 % noise;
- ``tampered_prompt``: tokens injected into the prompt;
- ``truncated``: the first half of an honest answer, with a matching proof;
- ``edited``: one token replaced, the proof rebuilt to match;
- ``wrong_seed``: tokens not drawn with the request's seed;
- ``cached``: an answer computed for another prompt.

Importing this package imports every member module, so every behaviour is known to
:func:`make_host` and :func:`cheater_names`.
"""

from deai.protocol.inference.llm.cheaters import (  # noqa: F401
    cached,
    edited,
    finetuned,
    other_model,
    quantized,
    tampered_prompt,
    truncated,
    wrong_seed,
)
from deai.protocol.inference.llm.cheaters.base import (
    LLM_CHEATERS,
    HonestHost,
    LLMHost,
    cheater_names,
    make_host,
)

__all__ = ["LLM_CHEATERS", "HonestHost", "LLMHost", "cheater_names", "make_host"]
