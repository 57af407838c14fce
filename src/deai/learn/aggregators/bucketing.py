"""Bucketing (Karimireddy et al., ICLR 2022): average random buckets of s updates, then aggregate."""

from __future__ import annotations

import math

import torch

from deai.learn.aggregators.base import PRE_AGGREGATORS, PreAggregator
from deai.learn.aggregators.rows import Rows

__all__ = ["Bucketing"]


@PRE_AGGREGATORS.register("bucketing")
class Bucketing(PreAggregator):
    """Shuffle the rows (seeded), average consecutive buckets of ``s``, run the inner aggregator on
    the ``ceil(n / s)`` bucket means. Averaging reduces the honest spread under non-IID data.

    Each Byzantine row can spoil one bucket, so the inner aggregator must hold for
    ``(ceil(n/s), min(f, ceil(n/s)))``; e.g. ``s=2`` with coordinate median needs ``f < n/4``.
    The shuffle draws from a generator seeded with ``seed`` and advanced at every call, so a run is
    reproducible; pass ``bucket_seed`` (an int) at call time to fix one round's shuffle instead, as
    replicated executors of one verified aggregation must.
    """

    assumption = "inner assumption on (ceil(n/s), min(f, ceil(n/s)))"

    def __init__(self, inner, f: int | None = None, s: int = 2, seed: int = 0) -> None:
        super().__init__(inner, f)
        if s < 1:
            raise ValueError("bucketing: s must be at least 1")
        self.s, self.seed = s, seed
        self._gen = torch.Generator().manual_seed(seed)

    def inner_shape(self, n: int, f: int) -> tuple[int, int]:
        m = math.ceil(n / self.s)
        return m, min(f, m)

    def reset(self) -> None:
        self._gen = torch.Generator().manual_seed(self.seed)
        super().reset()

    def mix(self, rows: Rows, bucket_seed: int | None = None, **context) -> Rows:
        n = rows.n
        gen = self._gen if bucket_seed is None else torch.Generator().manual_seed(int(bucket_seed))
        perm = torch.randperm(n, generator=gen)  # drawn once per call, before any block is read
        bucket = torch.empty(n, dtype=torch.long)
        bucket[perm] = torch.arange(n) // self.s
        m = math.ceil(n / self.s)
        counts = torch.bincount(bucket, minlength=m).to(rows.dtype)

        def means(block: torch.Tensor) -> torch.Tensor:
            sums = torch.zeros(m, block.shape[1], dtype=block.dtype).index_add_(0, bucket, block)
            return sums / counts[:, None]

        return rows.map(m, means)

    def reduce(self, rows: Rows, weights: torch.Tensor | None, **context) -> torch.Tensor:
        seed = context.pop("bucket_seed", None)
        return self.inner.reduce(self.mix(rows, seed), None, **context)
