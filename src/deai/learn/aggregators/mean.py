"""The (weighted) mean: FedAvg's aggregator. Not robust: one Byzantine row moves it arbitrarily."""

from __future__ import annotations

import torch

from deai.learn.aggregators.base import AGGREGATORS, Aggregator
from deai.learn.aggregators.rows import Rows

__all__ = ["Mean"]


@AGGREGATORS.register("mean", "fedavg")
class Mean(Aggregator):
    """``sum_i w_i x_i / sum_i w_i`` (plain mean without weights). Refuses any declared ``f > 0``."""

    assumption = "f = 0 (no Byzantine input; breakdown point 0)"
    checks_output_only = True

    def check(self, n: int, f: int) -> None:
        if f != 0:
            self._violated(n, f)

    def reduce(self, rows: Rows, weights: torch.Tensor | None, **context) -> torch.Tensor:
        if weights is None:
            return rows.mean()
        return rows.weighted_sum(weights / weights.sum())
