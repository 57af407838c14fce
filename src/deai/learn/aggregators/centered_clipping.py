"""Centered clipping (Karimireddy et al., 2021): clip every update's distance to the last aggregate."""

from __future__ import annotations

from collections.abc import Callable

import torch

from deai.learn.aggregators.base import AGGREGATORS, Aggregator
from deai.learn.aggregators.rows import Rows

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
    slower honest progress. ``scale`` (default 1) multiplies the adaptive radius: the median clips
    half of the honest rows in every round, which under strong label skew (two classes per
    provider) slows the classes of the providers whose updates are largest; ``scale=1.5`` leaves
    the honest rows of such a split unclipped (their distances lie within ~1.3 x the median) while
    a row farther than 1.5 x the typical honest distance is still cut back (the pull bound becomes
    ``f / (n - f) * scale * median``). Assumption ``2f < n`` (and ``f < q n`` for an adaptive radius).
    Two streamed passes per iteration (distances to the centre in float64, then the clipped step).
    """

    assumption = "2f < n (and f < quantile * n when tau is adaptive)"

    def __init__(
        self, f: int = 0, tau: float | None = None, iters: int = 1, quantile: float = 0.5, scale: float = 1.0
    ) -> None:
        super().__init__(f)
        bad_tau = tau is not None and tau <= 0
        if bad_tau or iters < 1 or not 0 < quantile <= 0.5 or not 1.0 <= scale <= 100.0:
            raise ValueError(
                "centered_clipping: need tau > 0 (or None), iters >= 1, 0 < quantile <= 0.5, "
                "1 <= scale <= 100"
            )
        self.tau, self.iters, self.quantile, self.scale = tau, iters, quantile, scale
        self.center: torch.Tensor | None = None

    def check(self, n: int, f: int) -> None:
        if 2 * f >= n or (self.tau is None and f >= self.quantile * n):
            self._violated(n, f)

    def reset(self) -> None:
        self.center = None

    def reduce(self, rows: Rows, weights: torch.Tensor | None, **context) -> torch.Tensor:
        n, d = rows.n, rows.d
        v = self.center
        if v is None or v.shape != (d,) or v.dtype != rows.dtype:
            v = torch.zeros(d, dtype=rows.dtype)
        for _ in range(self.iters):
            norms = rows.sq_distances_to(v).sqrt()
            tau = self.scale * float(torch.quantile(norms, self.quantile)) if self.tau is None else self.tau
            scale = (tau / norms.clamp_min(1e-12)).clamp(max=1.0) if tau > 0 else torch.zeros_like(norms)
            v = rows.columns(_clipped_step(v, (scale / n).to(rows.dtype), rows.scratch()))
        self.center = v.clone()
        return v


def _clipped_step(
    v: torch.Tensor, coef: torch.Tensor, tmp: Callable[[int], torch.Tensor]
) -> Callable[[torch.Tensor, int, int], torch.Tensor]:
    """Block ``[lo, hi)`` of ``v + sum_i coef_i (x_i - v)`` (the differences in ``tmp``)."""
    return lambda block, lo, hi: v[lo:hi] + coef @ torch.sub(block, v[lo:hi], out=tmp(hi - lo))
