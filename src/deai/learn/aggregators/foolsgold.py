"""FoolsGold (Fung et al., RAID 2020): down-weight providers whose update histories look alike."""

from __future__ import annotations

import torch

from deai.learn.aggregators.base import AGGREGATORS, Aggregator
from deai.learn.aggregators.rows import Rows

__all__ = ["FoolsGold"]


@AGGREGATORS.register("foolsgold")
class FoolsGold(Aggregator):
    """Weighted mean with weights from the cosine similarity of each provider's summed past updates.

    Sybils pushing one goal send similar updates round after round; FoolsGold gives the most similar
    ones weights near 0 (with "pardoning" of honest providers that merely resemble a Sybil), then a
    logit rescaling with confidence ``kappa``. Stateful: histories are keyed by ``client_ids``
    (``[n]`` integer tensor passed at call time; default ``0..n-1``); :meth:`reset` forgets them.
    Assumption: honest providers' data differ (non-IID); with IID data honest histories converge and
    get down-weighted too. Needs ``n >= 2``; no bound on ``f``. If every weight comes out 0 (all
    providers alike) the plain mean is returned. Cost O(n^2 d) (one Gram matrix of the histories,
    built block by block as the histories are updated, then one pass for the weighted mean).
    Memory: the histories are O(n d) state kept across rounds by design, whatever the row source.
    """

    assumption = "n >= 2, f < n, honest updates dissimilar"

    def __init__(self, f: int = 0, kappa: float = 1.0) -> None:
        super().__init__(f)
        self.kappa = kappa
        self.history: dict[int, torch.Tensor] = {}
        self.weights = torch.zeros(0)

    def check(self, n: int, f: int) -> None:
        if n < 2 or f >= n:
            self._violated(n, f)

    def reset(self) -> None:
        self.history = {}

    def reduce(
        self,
        rows: Rows,
        weights: torch.Tensor | None,
        client_ids: torch.Tensor | None = None,
        **context,
    ) -> torch.Tensor:
        n = rows.n
        ids = list(range(n)) if client_ids is None else [int(i) for i in client_ids]
        if len(ids) != n or len(set(ids)) != n:
            raise ValueError("foolsgold: client_ids must name each row once")
        prev = [self.history.get(cid) for cid in ids]
        new = [torch.empty(rows.d, dtype=rows.dtype) for _ in ids]
        # Cosine similarity from one Gram matrix of the updated histories (O(n^2 d)), accumulated
        # block by block as the histories are written; normalize the small [n, n] result.
        gram = torch.zeros(n, n, dtype=torch.float64)
        for lo, hi, block in rows.chunks():
            h = torch.stack([block[i] if p is None else p[lo:hi] + block[i] for i, p in enumerate(prev)])
            for i in range(n):
                new[i][lo:hi] = h[i]
            gram += (h @ h.T).double()
            del h, block
        # only once every block was read (a refused block leaves the history as it was)
        self.history.update(zip(ids, new, strict=True))
        norms = gram.diagonal().clamp_min(1e-24).sqrt()
        cs = gram / norms[:, None] / norms[None, :]
        cs.fill_diagonal_(-float("inf"))
        maxcs = cs.max(1).values
        # Pardoning: scale similarity down when the other provider is itself more suspicious.
        ratio = (maxcs[:, None] / maxcs[None, :]).clamp(max=1.0)
        pardon = torch.where(maxcs[None, :] > maxcs[:, None], ratio, torch.ones_like(cs))
        cs = cs * pardon
        cs.fill_diagonal_(-float("inf"))
        wv = (1.0 - cs.max(1).values).clamp(0.0, 1.0)
        if float(wv.max()) > 0:
            wv = wv / wv.max()
        wv = torch.where(wv >= 1.0, torch.full_like(wv, 0.99), wv)
        wv = (self.kappa * (torch.log(wv / (1.0 - wv)) + 0.5)).clamp(0.0, 1.0)
        wv = torch.nan_to_num(wv, nan=0.0)
        self.weights = wv.float()
        if float(wv.sum()) == 0.0:
            # Every provider is maximally similar to another: none can be told apart, so no one is
            # singled out; the plain mean is returned (for identical inputs, that input).
            return rows.mean()
        return rows.weighted_sum(wv / wv.sum())
