"""Nearest-neighbour mixing (Allouah et al., AISTATS 2023): a pre-aggregator for heterogeneous data."""

from __future__ import annotations

import torch

from deai.learn.aggregators._ops import pairwise_sq_dists
from deai.learn.aggregators.base import PRE_AGGREGATORS, PreAggregator
from deai.learn.aggregators.rows import Rows

__all__ = ["NNM"]


@PRE_AGGREGATORS.register("nnm")
class NNM(PreAggregator):
    """Replace each update by the mean of its ``n - f`` nearest updates (itself included), then run
    the inner aggregator. Mixing shrinks the spread honest updates have under non-IID data, which
    is what ALIE/IPM hide in. Cost O(n^2 d) (distances exact even beside a huge row, so one such
    row cannot reshuffle the others' neighbour sets). Assumption ``2f < n`` plus the inner one's on
    ``(n, f)``.
    """

    assumption = "2f < n"

    def check(self, n: int, f: int) -> None:
        if 2 * f >= n:
            self._violated(n, f)
        self.inner.check(n, f)

    def mix(self, rows: Rows, **context) -> Rows:
        n = rows.n
        k = n - self.f
        dist = pairwise_sq_dists(rows)
        # Stable ordering (distance, then row index) keeps the neighbour sets deterministic under ties.
        order = torch.sort(dist, dim=1, stable=True).indices[:, :k]
        mix = torch.zeros(n, n, dtype=rows.dtype)
        mix.scatter_(1, order, 1.0 / k)
        return rows.map(n, lambda block: mix @ block)
