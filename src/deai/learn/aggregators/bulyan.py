"""Bulyan (El Mhamdi et al., 2018): iterated Krum selection, then a coordinate-wise trimmed mean."""

from __future__ import annotations

import torch

from deai.learn.aggregators._ops import pairwise_sq_dists, rank_rows, sorted_columns
from deai.learn.aggregators.base import AGGREGATORS, Aggregator
from deai.learn.aggregators.krum import krum_scores
from deai.learn.aggregators.rows import Rows

__all__ = ["Bulyan"]


@AGGREGATORS.register("bulyan")
class Bulyan(Aggregator):
    """Select ``theta = n - 2f`` updates by repeatedly taking the Krum winner among those left, then
    per coordinate average the ``beta = theta - 2f`` middle values of the selected ones.

    Assumption ``n >= 4f + 3``. Cost O(n^2 d) (one pass for the pairwise distances, exact even
    beside a huge row; the iterations reuse them).
    """

    assumption = "n >= 4f + 3"

    def check(self, n: int, f: int) -> None:
        if n < 4 * f + 3:
            self._violated(n, f)

    def reduce(self, rows: Rows, weights: torch.Tensor | None, **context) -> torch.Tensor:
        n, f = rows.n, self.f
        dist = pairwise_sq_dists(rows)
        remaining = list(range(n))
        chosen: list[int] = []
        for _ in range(n - 2 * f):
            sub = dist[remaining][:, remaining]
            # Krum among the remaining rows; it needs at least f + 3 of them, which n >= 4f + 3 keeps.
            scores = krum_scores(sub, f) if len(remaining) > f + 2 else sub.sum(1)
            best = remaining[int(rank_rows(scores, sub)[0])]
            chosen.append(best)
            remaining.remove(best)
        theta = len(chosen)
        return sorted_columns(rows.select(sorted(chosen)), lambda s: s[:, f : theta - f].mean(1))
