"""Geometric median by smoothed Weiszfeld iterations (RFA, Pillutla et al., 2022)."""

from __future__ import annotations

import torch

from deai.learn.aggregators.base import AGGREGATORS, Aggregator
from deai.learn.aggregators.rows import Rows

__all__ = ["GeometricMedian"]


@AGGREGATORS.register("geometric_median", "geomed", "rfa")
class GeometricMedian(Aggregator):
    """``argmin_z sum_i ||x_i - z||``, approximated by the smoothed Weiszfeld algorithm.

    Starts at the mean; each iteration reweights every row by ``1 / max(nu, ||x_i - z||)`` and
    averages: two streamed passes over the rows per iteration (distances from explicit
    differences, exact even for huge outliers, accumulated in float64; then the weighted sum),
    holding only the ``[d]`` estimate besides one block.
    Stops after ``max_iter`` iterations or when ``z`` moves less than ``tol * ||z||``.
    Assumption ``2f < n`` (breakdown point 1/2).
    """

    assumption = "2f < n"

    def __init__(self, f: int = 0, max_iter: int = 100, tol: float = 1e-6, nu: float = 1e-6) -> None:
        super().__init__(f)
        if max_iter < 1 or tol < 0 or nu <= 0:
            raise ValueError("geometric_median: need max_iter >= 1, tol >= 0, nu > 0")
        self.max_iter, self.tol, self.nu = max_iter, tol, nu
        self.iterations = 0  # iterations used by the last call, for diagnostics

    def check(self, n: int, f: int) -> None:
        if 2 * f >= n:
            self._violated(n, f)

    def reduce(self, rows: Rows, weights: torch.Tensor | None, **context) -> torch.Tensor:
        z = rows.mean()
        for it in range(1, self.max_iter + 1):
            beta = 1.0 / rows.sq_distances_to(z).sqrt().clamp_min(self.nu)
            z_new = rows.weighted_sum(beta / beta.sum())
            moved = float((z_new - z).norm())
            z = z_new
            self.iterations = it
            if moved <= self.tol * max(float(z.norm()), self.nu):
                break
        return z
