"""``randomk(ratio)``: ``k = ceil(ratio * d)`` positions drawn from a seed; only the values travel.

The positions are the ``k`` smallest keys ``mix64(i, seed)`` over ``i in [0, d)`` (a splitmix64
bijection: no ties), sorted. Integer arithmetic alone defines them, so the receiver regenerates
exactly the same positions on any machine and torch version. The seed travels in the header. Give
every provider of a round the same seed (e.g. derived from the round) and they share one support:
their values then add position by position (secure aggregation of sparse updates).
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch

from deai.learn.compression._bits import mix64_range
from deai.learn.compression.base import (
    COMPRESSORS,
    Header,
    Sparsifier,
    WireSpec,
    budget,
    check_ratio,
)
from deai.learn.compression.errors import BadCompressed

__all__ = ["RandomK", "random_support"]


def random_support(d: int, k: int, seed: int) -> torch.Tensor:
    """The ``k`` positions (int64, strictly increasing) of ``[0, d)`` chosen by ``seed``."""
    keys = mix64_range(d, seed)
    # The keys are spread uniformly over the int64 range: those below a threshold a little above
    # the k-th smallest's expected value are a small candidate set that holds the k smallest
    # whenever it holds k keys (else fall back to all keys). The chosen set is the same either way.
    span = (1 << 64) * (1.1 * k + 10 * math.sqrt(k) + 100) / d
    if span < 2**63:
        candidates = (keys < int(span) - 2**63).nonzero().flatten()
        if candidates.numel() >= k:
            pick = torch.topk(keys[candidates], k, largest=False, sorted=False).indices
            return candidates[pick].sort().values
    return torch.topk(keys, k, largest=False, sorted=False).indices.sort().values


@COMPRESSORS.register("randomk", "random_k")
class RandomK(Sparsifier):
    """Random-k: ``ratio`` of the positions, chosen by a seed, whatever their values. The values
    are sent as they are (not rescaled by ``d / k``): with error feedback no rescaling is needed;
    an unbiased estimate of the vector multiplies them by ``d / k``. Costs no index bytes."""

    code: ClassVar[int] = 2

    def __init__(self, ratio: float = 0.01) -> None:
        self.ratio = check_ratio(self.name, ratio)

    def params(self) -> dict[str, object]:
        return {"ratio": self.ratio}

    def max_k(self, d: int) -> int:
        return budget(self.ratio, d)

    def select(self, x: torch.Tensor, seed: int) -> torch.Tensor:
        return random_support(x.numel(), self.max_k(x.numel()), seed)

    def wire(self, d: int, k: int) -> WireSpec:
        return {}

    def pack(self, indices: torch.Tensor, d: int) -> dict[str, torch.Tensor]:
        return {}

    def unpack(self, tensors: dict[str, torch.Tensor], header: Header) -> torch.Tensor:
        if header.seed < 0:
            raise BadCompressed(f"{self.name}: the seed must be non-negative, got {header.seed}")
        return random_support(header.d, header.k, header.seed)
