"""``chunked_topk(ratio, chunk)``: SparseLoCo-style top-k inside each chunk of ``chunk`` entries.

Each full chunk keeps its ``kc = ceil(ratio * chunk)`` largest-magnitude entries, the last
(partial, length ``L``) chunk ``min(kc, L)``; so ``k`` is fixed by ``d`` and the spec and the wire
carries only each index's offset inside its chunk: ``offsets`` int16 ``[k]`` (read unsigned, chunk
by chunk, increasing inside a chunk). ``chunk <= 65536`` so an offset fits 16 bits. Ties at a
chunk's threshold go to the lowest offset.
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
    check_int,
    check_ratio,
)
from deai.learn.compression.errors import BadCompressed

__all__ = ["OFFSETS", "ChunkedTopK"]

OFFSETS = "offsets"


@COMPRESSORS.register("chunked_topk", "chunked_top_k")
class ChunkedTopK(Sparsifier):
    """Top-k per chunk: every region of the vector sends its share, so one large layer cannot
    starve the others, and the indices cost 2 bytes each with no per-block counts."""

    code: ClassVar[int] = 3

    def __init__(self, ratio: float = 0.01, chunk: int = 4096) -> None:
        self.ratio = check_ratio(self.name, ratio)
        self._chunk = check_int(self.name, "chunk", chunk, 2, 65536)
        self.per_chunk = budget(self.ratio, self._chunk)

    @property
    def chunk(self) -> int:
        return self._chunk

    def params(self) -> dict[str, object]:
        return {"ratio": self.ratio, "chunk": self._chunk}

    def _row_k(self, d: int) -> torch.Tensor:
        rows = (d + self._chunk - 1) // self._chunk
        row_k = torch.full((rows,), self.per_chunk, dtype=torch.int64)
        rest = d % self._chunk
        if rest:
            row_k[-1] = min(self.per_chunk, rest)
        return row_k

    def max_k(self, d: int) -> int:
        full, rest = divmod(d, self._chunk)
        return full * self.per_chunk + min(self.per_chunk, rest)

    def select(self, x: torch.Tensor, seed: int) -> torch.Tensor:
        d = x.numel()
        row_k = self._row_k(d)
        padded = torch.full((row_k.numel() * self._chunk,), -1.0, dtype=torch.float32)
        padded[:d] = x.abs()
        return top_abs_rows(padded.view(-1, self._chunk), row_k)

    def wire(self, d: int, k: int) -> WireSpec:
        return {OFFSETS: ((k,), torch.int16)}

    def pack(self, indices: torch.Tensor, d: int) -> dict[str, torch.Tensor]:
        return {OFFSETS: to_u16(indices % self._chunk)}

    def unpack(self, tensors: dict[str, torch.Tensor], header: Header) -> torch.Tensor:
        offsets = from_u16(tensors[OFFSETS])
        if offsets.numel() and int(offsets.max()) >= self._chunk:
            raise BadCompressed(f"{self.name}: an offset is not inside its chunk of {self._chunk}")
        row_k = self._row_k(header.d)
        rows = torch.repeat_interleave(torch.arange(row_k.numel(), dtype=torch.int64), row_k)
        indices = rows * self._chunk + offsets
        check_support(indices, header.d, self.name)
        return indices
