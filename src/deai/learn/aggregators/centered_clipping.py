"""Centered clipping (Karimireddy et al., 2021): clip every update's distance to the last aggregate."""

from __future__ import annotations

import torch

from deai.learn.aggregators.base import AGGREGATORS, Aggregator

__all__ = ["CenteredClipping"]


@AGGREGATORS.register("centered_clipping", "cc")
class CenteredClipping(Aggregator):
    """``v <- v + mean_i clip(x_i - v, tau)`` repeated ``iters`` times, starting from the previous
    call's output (zeros at first); ``clip(z, tau) = z * min(1, tau / ||z||)``.

    Stateful: the centre carries over between rounds (call :meth:`reset` for a new task); it works
    best on momentum-averaged updates, as in the paper. ``tau=None`` picks, at every iteration, the
    ``quantile`` q (default: the median) of the rows' distances to the centre: with
    ``f < min(q, 1 - q) n`` it lies between honest distances, so the radius needs no tuning to
    the update scale. A smaller
    quantile clips harder: less Byzantine pull (at most ``f / (n - f) * tau`` at the fixed point),
    slower honest progress. Assumption ``2f < n`` (and ``f < q n`` for an adaptive radius).
    """

    assumption = "2f < n (and f < quantile * n when tau is adaptive)"

    def __init__(self, f: int = 0, tau: float | None = None, iters: int = 1, quantile: float = 0.5) -> None:
        super().__init__(f)
        if (tau is not None and tau <= 0) or iters < 1 or not 0 < quantile <= 0.5:
            raise ValueError("centered_clipping: need tau > 0 (or None), iters >= 1, 0 < quantile <= 0.5")
        self.tau, self.iters, self.quantile = tau, iters, quantile
        self.center: torch.Tensor | None = None

    def check(self, n: int, f: int) -> None:
        if 2 * f >= n or (self.tau is None and f >= self.quantile * n):
            self._violated(n, f)

    def reset(self) -> None:
        self.center = None

    def aggregate(self, updates: torch.Tensor, weights: torch.Tensor | None, **context) -> torch.Tensor:
        d = updates.shape[1]
        v = self.center
        if v is None or v.shape != (d,) or v.dtype != updates.dtype:
            v = torch.zeros(d, dtype=updates.dtype)
        for _ in range(self.iters):
            diff = updates - v
            norms = diff.norm(dim=1)
            tau = float(torch.quantile(norms.double(), self.quantile)) if self.tau is None else self.tau
            scale = (tau / norms.clamp_min(1e-12)).clamp(max=1.0) if tau > 0 else torch.zeros_like(norms)
            v = v + (scale / updates.shape[0]) @ diff
        self.center = v.clone()
        return v
