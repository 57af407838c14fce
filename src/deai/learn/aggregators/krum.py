"""Krum and Multi-Krum (Blanchard et al., 2017): pick the update(s) closest to their neighbours."""

from __future__ import annotations

import torch

from deai.learn.aggregators._ops import pairwise_sq_dists, rank_rows
from deai.learn.aggregators.base import AGGREGATORS, Aggregator
from deai.learn.aggregators.rows import Rows

__all__ = ["Krum", "MultiKrum", "krum_scores"]


def krum_scores(dist: torch.Tensor, f: int) -> torch.Tensor:
    """Each row's sum of squared distances to its ``n - f - 2`` nearest other rows."""
    n = dist.shape[0]
    k = n - f - 2
    off = dist + torch.diag(torch.full((n,), float("inf"), dtype=dist.dtype))  # exclude self
    return off.topk(k, dim=1, largest=False).values.sum(1)


@AGGREGATORS.register("multi_krum", "multikrum")
class MultiKrum(Aggregator):
    """Average of the ``m`` updates with the lowest Krum scores (``m = n - f`` by default).

    Cost O(n^2 d) for the pairwise distances (one streamed float64 Gram pass, exact to
    :data:`~deai.learn.aggregators._ops.DISTANCE_RTOL` even beside a huge row), then O(n^2 log n),
    then one more pass for the mean of the chosen rows.
    Assumption ``n >= 2f + 3``. Exact ties in the score are broken by the total distance to all rows.
    """

    assumption = "n >= 2f + 3"

    def __init__(self, f: int = 0, m: int | None = None) -> None:
        super().__init__(f)
        if m is not None and m < 1:
            raise ValueError(f"{self.name}: m must be at least 1")
        self.m = m
        self.selected: list[int] = []  # rows chosen by the last call, for diagnostics

    def check(self, n: int, f: int) -> None:
        if n < 2 * f + 3:
            self._violated(n, f)
        if self.m is not None and self.m > n - f:
            raise ValueError(f"{self.name}: m={self.m} exceeds n - f = {n - f}")

    def reduce(self, rows: Rows, weights: torch.Tensor | None, **context) -> torch.Tensor:
        m = (rows.n - self.f) if self.m is None else self.m
        dist = pairwise_sq_dists(rows)
        order = rank_rows(krum_scores(dist, self.f), dist)[:m]
        self.selected = order.tolist()
        return rows.map(m, lambda block: block[order]).mean()


@AGGREGATORS.register("krum")
class Krum(MultiKrum):
    """The single update with the lowest Krum score. Assumption ``n >= 2f + 3``."""

    def __init__(self, f: int = 0) -> None:
        super().__init__(f, m=1)
