"""Coordinate-wise median (Yin et al., 2018): each coordinate independently, breakdown point 1/2."""

from __future__ import annotations

import torch

from deai.learn.aggregators._ops import sorted_columns
from deai.learn.aggregators.base import AGGREGATORS, Aggregator
from deai.learn.aggregators.rows import Rows

__all__ = ["CoordinateMedian"]


@AGGREGATORS.register("median", "coordinate_median")
class CoordinateMedian(Aggregator):
    """Per coordinate, the middle value (the mean of the two middle values when n is even).

    Assumption ``2f < n``: then every coordinate of the output lies within the range of the honest
    values. Known weakness: ALIE/IPM shift all coordinates a little within that range (see docs).
    """

    assumption = "2f < n"

    def check(self, n: int, f: int) -> None:
        if 2 * f >= n:
            self._violated(n, f)

    def reduce(self, rows: Rows, weights: torch.Tensor | None, **context) -> torch.Tensor:
        lo, hi = (rows.n - 1) // 2, rows.n // 2
        return sorted_columns(rows, lambda s: 0.5 * s[:, lo] + 0.5 * s[:, hi])
