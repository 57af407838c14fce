"""``topk(ratio)``: the ``k = ceil(ratio * d)`` entries of largest magnitude, over the whole vector.

Wire: ``offsets`` int16 ``[k]`` (each index's low 16 bits, read unsigned) and ``counts`` int32
``[ceil(d / 65536)]`` (how many indices fall in each block of 65536), so an index costs 2 bytes
instead of 4. Ties at the threshold go to the lowest index (deterministic on every machine).
A receiver accepts up to ``k`` values (fewer is allowed, never more).
"""

from __future__ import annotations

from typing import ClassVar

import torch

from deai.learn.compression._bits import from_u16, to_u16
from deai.learn.compression._select import check_support, top_abs_rows
from deai.learn.compression.base import (
    COMPRESSORS,
    Header,
    Sparsifier,
    WireSpec,
    budget,
    check_ratio,
)
from deai.learn.compression.errors import BadCompressed

__all__ = ["BLOCK", "COUNTS", "OFFSETS", "TopK"]

BLOCK = 65536
"""Indices are written as a 16-bit offset in a block of this many positions plus per-block counts."""
OFFSETS = "offsets"
COUNTS = "counts"


@COMPRESSORS.register("topk", "top_k")
class TopK(Sparsifier):
    """Global top-k by magnitude: keeps the largest ``ratio`` of the entries (at least one).
    Biased (it drops the small entries every round): use it with error feedback. ``ratio=1``
    sends every value (exact when no quantizer follows)."""

    code: ClassVar[int] = 1

    def __init__(self, ratio: float = 0.01) -> None:
        self.ratio = check_ratio(self.name, ratio)

    def params(self) -> dict[str, object]:
        return {"ratio": self.ratio}

    def max_k(self, d: int) -> int:
        return budget(self.ratio, d)

    def exact_k(self) -> bool:
        return False

    def select(self, x: torch.Tensor, seed: int) -> torch.Tensor:
        k = self.max_k(x.numel())
        return top_abs_rows(x.abs().view(1, -1), torch.tensor([k]))

    def wire(self, d: int, k: int) -> WireSpec:
        return {OFFSETS: ((k,), torch.int16), COUNTS: (((d + BLOCK - 1) // BLOCK,), torch.int32)}

    def pack(self, indices: torch.Tensor, d: int) -> dict[str, torch.Tensor]:
        blocks = (d + BLOCK - 1) // BLOCK
        counts = torch.bincount(indices // BLOCK, minlength=blocks).to(torch.int32)
        return {OFFSETS: to_u16(indices % BLOCK), COUNTS: counts}

    def unpack(self, tensors: dict[str, torch.Tensor], header: Header) -> torch.Tensor:
        counts = tensors[COUNTS].to(torch.int64)
        if bool((counts < 0).any()) or int(counts.sum()) != header.k:
            raise BadCompressed(f"{self.name}: block counts must be non-negative and sum to k={header.k}")
        block = torch.repeat_interleave(torch.arange(counts.numel(), dtype=torch.int64), counts)
        indices = block * BLOCK + from_u16(tensors[OFFSETS])
        check_support(indices, header.d, self.name)
        return indices
