"""The typed records of a verified generation: what a user asks for and what a host answers.

A :class:`GenerationRequest` carries the prompt as token ids (a chat prompt is rendered by the
tokenizer's chat template with :func:`chat_prompt`, on the user's side, so host and verifier see
the same ids), the sampling rule, the request's seed (every random draw of the answer comes from
it) and the precision the host must compute in (``"float32"`` or ``"bfloat16"``: the thresholds are
fitted per precision, see :mod:`~deai.protocol.inference.llm.calibrate`). A :class:`Generation`
is the host's answer: the generated token ids and the proof bytes
(:mod:`~deai.protocol.inference.llm.proof`).

Every field is bounded by :meth:`GenerationRequest.check` and :meth:`Generation.check` before use.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from deai.protocol.inference.llm.errors import BadRequest

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

__all__ = [
    "DTYPES",
    "MAX_NEW_TOKENS",
    "MAX_PROMPT_TOKENS",
    "MAX_STOP_IDS",
    "Generation",
    "GenerationRequest",
    "Sampling",
    "chat_prompt",
]

MAX_PROMPT_TOKENS = 8192
"""Longest prompt a request may carry (token ids)."""
MAX_NEW_TOKENS = 4096
"""Most tokens a request may ask for."""
MAX_STOP_IDS = 16
"""Most stop (end-of-sequence) ids a request may name."""
MAX_TEMPERATURE = 10.0
DTYPES = ("float32", "bfloat16")
"""The precisions a request may pin; a host computes in it, a verifier recomputes in it."""
_MAX_SEED = 2**63 - 1


@dataclass(frozen=True)
class Sampling:
    """How each token is chosen: ``temperature == 0`` is greedy (the arg-max); otherwise the
    token is drawn from ``softmax(logits / temperature)`` restricted to the ``top_k`` most likely
    tokens (0: no limit) and to the smallest set of probability at least ``top_p``."""

    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    def check(self, vocab_size: int) -> None:
        t, p, k = self.temperature, self.top_p, self.top_k
        if not isinstance(t, float | int) or not math.isfinite(t) or not 0.0 <= t <= MAX_TEMPERATURE:
            raise BadRequest(f"temperature must be a finite number in [0, {MAX_TEMPERATURE}], got {t!r}")
        if 0.0 < t < 1e-3:
            raise BadRequest("temperature below 1e-3 must be 0 (greedy)")
        if not isinstance(p, float | int) or not math.isfinite(p) or not 0.0 < p <= 1.0:
            raise BadRequest(f"top_p must be in (0, 1], got {p!r}")
        if not isinstance(k, int) or isinstance(k, bool) or not 0 <= k <= vocab_size:
            raise BadRequest(f"top_k must be an integer in [0, {vocab_size}], got {k!r}")


@dataclass(frozen=True)
class GenerationRequest:
    """One generation: prompt token ids, at most ``max_new_tokens`` new tokens, the sampling rule,
    the seed of every draw, the precision and the stop ids (generation ends at the first one)."""

    prompt: tuple[int, ...]
    max_new_tokens: int
    seed: int
    sampling: Sampling = field(default_factory=Sampling)
    dtype: str = "float32"
    stop: tuple[int, ...] = ()

    def check(self, vocab_size: int, max_positions: int | None = None) -> None:
        """Raise :class:`BadRequest` unless every field is in bounds for a model of ``vocab_size``
        tokens and ``max_positions`` positions."""
        _check_ids(self.prompt, vocab_size, MAX_PROMPT_TOKENS, "prompt")
        n = self.max_new_tokens
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_NEW_TOKENS:
            raise BadRequest(f"max_new_tokens must be an integer in [1, {MAX_NEW_TOKENS}], got {n!r}")
        if max_positions is not None and len(self.prompt) + n > max_positions:
            raise BadRequest(f"prompt + max_new_tokens exceeds the model's {max_positions} positions")
        s = self.seed
        if not isinstance(s, int) or isinstance(s, bool) or not 0 <= s <= _MAX_SEED:
            raise BadRequest(f"seed must be an integer in [0, 2**63), got {s!r}")
        if not isinstance(self.sampling, Sampling):
            raise BadRequest("sampling must be a Sampling record")
        self.sampling.check(vocab_size)
        if self.dtype not in DTYPES:
            raise BadRequest(f"dtype must be one of {DTYPES}, got {self.dtype!r}")
        if len(self.stop) > MAX_STOP_IDS:
            raise BadRequest(f"at most {MAX_STOP_IDS} stop ids")
        if self.stop:
            _check_ids(self.stop, vocab_size, MAX_STOP_IDS, "stop")


@dataclass(frozen=True)
class Generation:
    """A host's answer: the generated token ids (ending with a stop id, or exactly
    ``max_new_tokens`` long) and the proof bytes."""

    tokens: tuple[int, ...]
    proof: bytes

    def check(self, request: GenerationRequest, vocab_size: int) -> None:
        """Raise :class:`BadRequest` unless the tokens are in bounds for ``request``."""
        _check_ids(self.tokens, vocab_size, request.max_new_tokens, "generated tokens")
        if not isinstance(self.proof, bytes):
            raise BadRequest("proof must be bytes")


def _check_ids(ids: Sequence[int], vocab_size: int, limit: int, what: str) -> None:
    if not isinstance(ids, tuple) or not 1 <= len(ids) <= limit:
        raise BadRequest(f"{what} must be a tuple of 1 to {limit} token ids")
    for i in ids:  # bounded by limit; ids arrive as Python ints from a decoded message
        if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < vocab_size:
            raise BadRequest(f"{what}: token ids must be integers in [0, {vocab_size})")


def chat_prompt(
    tokenizer: PreTrainedTokenizerBase, messages: Sequence[dict[str, str]] | str
) -> tuple[int, ...]:
    """The prompt ids of a chat (``[{"role": ..., "content": ...}, ...]``; a string is one user
    message), rendered by the tokenizer's chat template with the assistant turn opened."""
    msgs = [{"role": "user", "content": messages}] if isinstance(messages, str) else list(messages)
    out: Any = tokenizer.apply_chat_template(msgs, add_generation_prompt=True, tokenize=True)
    ids: Any = out if isinstance(out, list) else out["input_ids"]
    if ids and isinstance(ids[0], list):
        ids = ids[0]
    return tuple(int(i) for i in ids)
