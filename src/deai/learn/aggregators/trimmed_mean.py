"""Coordinate-wise trimmed mean (Yin et al., 2018)."""

from __future__ import annotations

import torch

from deai.learn.aggregators._ops import sorted_columns
from deai.learn.aggregators.base import AGGREGATORS, Aggregator
from deai.learn.aggregators.rows import Rows

__all__ = ["TrimmedMean"]


@AGGREGATORS.register("trimmed_mean")
class TrimmedMean(Aggregator):
    """Per coordinate, drop the ``trim`` largest and ``trim`` smallest values and average the rest.

    ``trim`` defaults to ``f``; it must be at least ``f`` (else a Byzantine value survives) and the
    assumption is ``2 * trim < n`` so that something is left to average.
    """

    assumption = "f <= trim and 2 * trim < n"

    def __init__(self, f: int = 0, trim: int | None = None) -> None:
        super().__init__(f)
        self.trim = f if trim is None else int(trim)
        if self.trim < f:
            raise ValueError(f"trimmed_mean: trim={self.trim} must be at least f={f}")

    def check(self, n: int, f: int) -> None:
        if 2 * max(self.trim, f) >= n:
            self._violated(n, f)

    def reduce(self, rows: Rows, weights: torch.Tensor | None, **context) -> torch.Tensor:
        n, t = rows.n, max(self.trim, self.f)
        return sorted_columns(rows, lambda s: s[:, t : n - t].mean(1))
