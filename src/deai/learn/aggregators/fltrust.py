"""FLTrust (Cao et al., NDSS 2021): trust scores from agreement with the server's own root update."""

from __future__ import annotations

import torch

from deai.learn.aggregators.base import Aggregator
from deai.learn.errors import AssumptionViolated, BadUpdates

__all__ = ["FLTrust"]


class FLTrust(Aggregator):
    """``sum_i TS_i * x_i * ||g0|| / ||x_i|| / sum_i TS_i`` with ``TS_i = relu(cos(x_i, g0))``.

    Pass the server's update on its small clean root dataset as ``root_update=g0`` (``[d]``) on every
    call. Every update is rescaled to ``||g0||``, so no single row can dominate by magnitude; rows
    pointing away from ``g0`` get weight 0. If no row agrees with ``g0`` the result is zeros (no step).
    Assumption: the root data is clean and representative; no bound on ``f`` below ``n``.
    """

    name = "fltrust"
    assumption = "f < n and a clean root update"

    def aggregate(
        self,
        updates: torch.Tensor,
        weights: torch.Tensor | None,
        root_update: torch.Tensor | None = None,
        **context,
    ) -> torch.Tensor:
        if root_update is None:
            raise AssumptionViolated("fltrust needs the server's root update: call it with root_update=")
        g0 = root_update.to(updates.dtype)
        if g0.shape != (updates.shape[1],) or not bool(torch.isfinite(g0).all()):
            raise BadUpdates(f"fltrust: root_update must be finite with shape ({updates.shape[1]},)")
        g0_norm = g0.norm()
        if float(g0_norm) == 0.0:
            raise BadUpdates("fltrust: the root update is zero; it cannot anchor trust")
        norms = updates.norm(dim=1).clamp_min(1e-12)
        trust = torch.relu((updates @ g0) / (norms * g0_norm))
        if float(trust.sum()) == 0.0:
            return torch.zeros_like(g0)
        coef = trust * g0_norm / norms / trust.sum()
        self.trust = trust
        return coef @ updates
