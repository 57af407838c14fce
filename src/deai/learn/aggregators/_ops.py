"""Shared kernels: sorted columns (for median-type rules), pairwise squared distances, and the
cosines against a server root update (FLTrust, the root gate), over a :class:`Rows` source."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from deai.learn.aggregators.rows import Rows

__all__ = ["pairwise_sq_dists", "rank_rows", "reduce_sorted_columns", "root_cosines", "sorted_columns"]

# Column chunk for the sort kernel: a [chunk, n] block stays in cache while it is sorted.
_CHUNK = 4096


def reduce_sorted_columns(
    updates: torch.Tensor, fn: Callable[[np.ndarray], np.ndarray], chunk: int = _CHUNK
) -> torch.Tensor:
    """Apply ``fn`` to each column chunk sorted along the provider axis; concatenate the results.

    ``fn`` receives a C-contiguous ``[c, n]`` array whose rows are sorted ascending and returns ``[c]``.
    Why NumPy: its row sort (SIMD sorting networks) on a cache-sized transposed block is several times
    faster than ``torch.sort``/``torch.median``/``torch.kthvalue`` along dim 0 on the CPU; sorting is
    exact, so the result does not depend on which kernel ran.
    """
    x = updates.detach().cpu().numpy()
    _n, d = x.shape
    out = np.empty(d, dtype=x.dtype)
    for i in range(0, d, chunk):
        # a copy, always: for one column (or one row) the transpose is already contiguous and
        # ascontiguousarray would return a view, so the sort below would reorder the caller's rows
        block = x[:, i : i + chunk].T.copy()
        block.sort(axis=1)
        out[i : i + chunk] = fn(block)
    return torch.from_numpy(out)


def sorted_columns(rows: Rows, fn: Callable[[np.ndarray], np.ndarray]) -> torch.Tensor:
    """:func:`reduce_sorted_columns` over every block of ``rows``: a ``[d]`` vector."""
    return rows.columns(lambda block, lo, hi: reduce_sorted_columns(block, fn))


def pairwise_sq_dists(rows: Rows) -> torch.Tensor:
    """``[n, n]`` squared Euclidean distances in float64, O(n^2 d) through one streamed Gram matrix.

    The rows are centred on their mean first (block by block, which is exact: centring is per
    coordinate): distances do not change, and the Gram trick ``|a|^2 + |b|^2 - 2ab`` then loses far
    less precision when the updates are close together.
    """
    gram = rows.gram(centred=True)
    sq = gram.diagonal()
    dist = (sq[:, None] + sq[None, :] - 2.0 * gram).clamp_min(0.0)
    dist = 0.5 * (dist + dist.T)  # exactly symmetric, so mutual neighbours tie exactly
    dist.fill_diagonal_(0.0)
    return dist


def rank_rows(scores: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
    """Row indices by ascending score; exact ties broken by the row's total distance to all others.

    Krum-type scores tie exactly for mutual nearest neighbours; breaking the tie by row index would
    make the choice depend on the order providers were stacked in, the total distance does not.
    """
    by_total = torch.sort(dist.sum(1), stable=True).indices
    return by_total[torch.sort(scores[by_total], stable=True).indices]


def root_cosines(
    name: str, rows: Rows, root_update: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Check the server's ``root_update`` against ``rows`` and return ``(g0, ||g0||, row norms,
    cos(row, g0))`` (norms and cosines in float64, from one streamed pass each); refuses a missing,
    wrong-shape, non-finite or zero root update, naming ``name``."""
    from deai.learn.errors import AssumptionViolated, BadUpdates

    if root_update is None:
        raise AssumptionViolated(f"{name} needs the server's root update: call it with root_update=")
    g0 = root_update.to(rows.dtype)
    if g0.shape != (rows.d,) or not bool(torch.isfinite(g0).all()):
        raise BadUpdates(f"{name}: root_update must be finite with shape ({rows.d},)")
    g0_norm = g0.double().norm()
    if float(g0_norm) == 0.0:
        raise BadUpdates(f"{name}: the root update is zero; it cannot anchor trust")
    norms = rows.sq_norms().sqrt().clamp_min(1e-12)
    return g0, g0_norm, norms, rows.dots(g0) / (norms * g0_norm)
