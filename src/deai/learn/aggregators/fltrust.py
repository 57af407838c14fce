"""FLTrust (Cao et al., NDSS 2021): trust scores from agreement with the server's own root update."""

from __future__ import annotations

import torch

from deai.learn.aggregators._ops import root_cosines
from deai.learn.aggregators.base import AGGREGATORS, Aggregator
from deai.learn.aggregators.rows import Rows

__all__ = ["FLTrust"]


@AGGREGATORS.register("fltrust")
class FLTrust(Aggregator):
    """``sum_i TS_i * x_i * ||g0|| / ||x_i|| / sum_i TS_i`` with ``TS_i = relu(cos(x_i, g0))``.

    Pass the server's update on its small clean root dataset as ``root_update=g0`` (``[d]``) on every
    call. Every update is rescaled to ``||g0||``, so no single row can dominate by magnitude; rows
    pointing away from ``g0`` get weight 0. If no row agrees with ``g0`` the result is zeros (no step).
    Assumption: the root data is clean and representative; no bound on ``f`` below ``n``.
    """

    assumption = "f < n and a clean root update"
    needs_root = True

    def reduce(
        self,
        rows: Rows,
        weights: torch.Tensor | None,
        root_update: torch.Tensor | None = None,
        **context,
    ) -> torch.Tensor:
        g0, g0_norm, norms, cos = root_cosines(self.name, rows, root_update)
        trust = torch.relu(cos)
        if float(trust.sum()) == 0.0:
            return torch.zeros_like(g0)
        coef = trust * g0_norm / norms / trust.sum()  # float64 coefficients, one streamed sum
        self.trust = trust.to(rows.dtype)
        return rows.weighted_sum(coef)
