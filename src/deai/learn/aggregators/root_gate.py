"""Root gate: drop the updates that point away from the server's own update on clean root data.

FLTrust (Cao et al., NDSS 2021) weights each update by ``relu(cos(x_i, g0))`` against the server's
update ``g0`` on a small clean root dataset, and rescales every row to ``||g0||``. Under label skew
that weighting also discounts honest providers whose data differs from the root data, and the
rescaling throws away the honest magnitudes. The gate keeps only FLTrust's sign test — a row whose
cosine with ``g0`` is not positive is a step up the root loss — and leaves magnitudes and
weighting to the inner aggregator (e.g. centered clipping), which bounds what any kept row can do.
"""

from __future__ import annotations

import torch

from deai.learn.aggregators._ops import root_cosines
from deai.learn.aggregators.base import PRE_AGGREGATORS, Aggregator, PreAggregator
from deai.learn.aggregators.rows import Rows

__all__ = ["RootGate"]


@PRE_AGGREGATORS.register("root_gate")
class RootGate(PreAggregator):
    """Keep the rows with ``cos(x_i, g0) > 0``, and never fewer than the ``n - f`` most aligned.

    Pass the server's update on its root data as ``root_update=g0`` (``[d]``) on every call (the
    federated loop does so when ``root_data`` is given). The inner aggregator sees between ``n - f``
    and ``n`` rows, at most ``f`` of them Byzantine, in their original order; its assumption is
    checked at ``(n - f, f)``, the fewest rows it can get. A zero row (a free rider) has cosine 0
    and is dropped unless it is needed to reach ``n - f``. Assumption: ``f < n``, a clean root
    update, plus the inner aggregator's on ``(n - f, f)``.
    """

    assumption = "f < n and a clean root update"
    needs_root = True

    def inner_shape(self, n: int, f: int) -> tuple[int, int]:
        return n - f, f

    def check(self, n: int, f: int) -> None:
        if f >= n:
            self._violated(n, f)
        self.inner.check(*self.inner_shape(n, f))

    def mix(self, rows: Rows, root_update: torch.Tensor | None = None, **context) -> Rows:
        return rows.select(self.select(rows, root_update))

    def select(self, rows: Rows, root_update: torch.Tensor | None) -> torch.Tensor:
        """Indices (ascending) of the rows the gate keeps."""
        n = rows.n
        *_, cos = root_cosines(self.name, rows, root_update)
        self.cosine = cos.to(rows.dtype)
        keep = max(n - self.f, int((cos > 0).sum()))
        # stable sort: equal cosines keep row order, so the choice is deterministic
        order = torch.sort(-cos, stable=True).indices[:keep]
        return torch.sort(order).values

    def reduce(
        self,
        rows: Rows,
        weights: torch.Tensor | None,
        root_update: torch.Tensor | None = None,
        **context: torch.Tensor,
    ) -> torch.Tensor:
        kept = self.select(rows, root_update)
        assert root_update is not None  # select() refuses a missing root update
        self.kept = kept
        inner: Aggregator = self.inner
        # a lazy selection (the source itself when none is dropped)
        return inner.reduce(rows.select(kept), None, root_update=root_update, **context)
