"""Geometric median by smoothed Weiszfeld iterations (RFA, Pillutla et al., 2022)."""

from __future__ import annotations

import torch

from deai.learn.aggregators.base import Aggregator

__all__ = ["GeometricMedian"]


class GeometricMedian(Aggregator):
    """``argmin_z sum_i ||x_i - z||``, approximated by the smoothed Weiszfeld algorithm.

    Each iteration reweights every row by ``1 / max(nu, ||x_i - z||)`` and averages: two passes over
    the ``[n, d]`` tensor (one matrix-vector product for the distances, one for the new average).
    Stops after ``max_iter`` iterations or when ``z`` moves less than ``tol * ||z||``.
    Assumption ``2f < n`` (breakdown point 1/2).
    """

    name = "geometric_median"
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

    def aggregate(self, updates: torch.Tensor, weights: torch.Tensor | None, **context) -> torch.Tensor:
        # Centre first: the distance expansion |x|^2 - 2 x.z + |z|^2 then cancels far less.
        shift = updates.mean(0)
        x = updates - shift
        sq = (x * x).sum(1).double()
        z = torch.zeros_like(shift)
        for it in range(1, self.max_iter + 1):
            dist = (sq - 2.0 * (x @ z).double() + float((z.double() ** 2).sum())).clamp_min(0.0).sqrt()
            beta = 1.0 / dist.clamp_min(self.nu)
            z_new = ((beta / beta.sum()).to(x.dtype)) @ x
            moved = float((z_new - z).norm())
            z = z_new
            self.iterations = it
            if moved <= self.tol * max(float(z.norm()), self.nu):
                break
        return z + shift
