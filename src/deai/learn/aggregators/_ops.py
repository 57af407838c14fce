"""Shared kernels: sorted columns (for median-type rules), pairwise squared distances, and the
cosines against a server root update (FLTrust, the root gate), over a :class:`Rows` source."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch

from deai.learn.aggregators.rows import Rows

__all__ = [
    "DISTANCE_RTOL",
    "pairwise_sq_dists",
    "rank_rows",
    "reduce_sorted_columns",
    "root_cosines",
    "sorted_columns",
]

# Column chunk for the sort kernel: a [chunk, n] block stays in cache while it is sorted.
_CHUNK = 4096
# Columns the distance kernel converts to float64 at a time (an [n, _SUB] buffer): wide enough for
# an efficient matrix product, narrow enough to stay small; also the summation length in its bound.
_SUB = 32768
_U64 = 2.0**-53  # unit roundoff of float64

DISTANCE_RTOL = 1e-6
"""Every squared distance from :func:`pairwise_sq_dists` is within this relative error of the
exact one (pairs the fast path cannot guarantee it for are recomputed from differences)."""


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
    """``[n, n]`` squared Euclidean distances in float64, each within relative error
    :data:`DISTANCE_RTOL` of the exact distance between the (float32) rows, whatever their scale.

    How, and why (one huge row must not blur the others' distances, which decide Krum's and NNM's
    neighbours):

    1. One streamed pass builds a Gram matrix in float64 over column slices of :data:`_SUB`
       columns. Each slice is converted to float64 (products of float32 values are then exact)
       and centred on one of its own rows, the row of median norm (never a huge outlier while
       outliers are fewer than half; centring keeps near-identical rows from cancelling). Centring
       on the mean instead, as before, let one row of 1e5 spoil every honest distance in float32.
    2. ``|a|^2 + |b|^2 - 2ab`` then has a rigorous float64 error bound ``gamma (|a|^2 + |b|^2)``
       (``gamma`` from the summation lengths: slice width plus number of slices, times 2^-53).
    3. The few pairs whose bound exceeds ``DISTANCE_RTOL`` times their distance (rows close
       together yet far from the centre, e.g. colluding copies far away) are recomputed from
       explicit float64 differences in a second streamed pass, which only runs when needed.

    Memory O(n^2 + n * chunk); bit-identical across calls and across sources with equal chunks.
    """
    gram, width, slices = _centred_gram(rows)
    sq = gram.diagonal()
    norms = sq[:, None] + sq[None, :]
    dist = (norms - 2.0 * gram).clamp_min(0.0)
    dist = 0.5 * (dist + dist.T)  # exactly symmetric, so mutual neighbours tie exactly
    bound = 1.01 * 2.0 * (width + slices + 8) * _U64 * norms
    unsure = torch.triu(bound > DISTANCE_RTOL * dist, diagonal=1)
    if bool(unsure.any()):
        i, j = unsure.nonzero(as_tuple=True)
        exact = _difference_sq_dists(rows, i, j)
        dist[i, j] = exact
        dist[j, i] = exact
    dist.fill_diagonal_(0.0)
    return dist


def _slices(rows: Rows) -> Iterator[torch.Tensor]:
    """Every column slice of ``rows`` (at most :data:`_SUB` columns), converted to float64 in one
    reused ``[n, _SUB]`` buffer: valid until the next slice is read."""
    n = rows.n
    width = min(_SUB, rows.chunk, rows.d)
    buf = torch.empty(n * width, dtype=torch.float64)
    for lo, hi, block in rows.chunks():
        for s in range(0, hi - lo, width):
            e = min(hi - lo, s + width)
            b = buf[: n * (e - s)].view(n, e - s)
            b.copy_(block[:, s:e])
            yield b
        del block


def _centred_gram(rows: Rows) -> tuple[torch.Tensor, int, int]:
    """The float64 Gram matrix of the rows, each slice centred on its median-norm row; also the
    slice width and the number of slices (what the error bound of :func:`pairwise_sq_dists` needs)."""
    n = rows.n
    g = torch.zeros(n, n, dtype=torch.float64)
    count = 0
    for b in _slices(rows):
        norms = torch.linalg.vector_norm(b, dim=1)
        r = torch.sort(norms, stable=True).indices[(n - 1) // 2]
        b.sub_(b[r].clone())
        g.addmm_(b, b.T)
        count += 1
    return g, min(_SUB, rows.chunk, rows.d), count


def _difference_sq_dists(rows: Rows, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
    """``||x_i - x_j||^2`` for the pairs ``(i[k], j[k])`` from explicit float64 differences (no
    cancellation: every term is non-negative), ``n`` pairs at a time so the temporaries stay
    ``[n, _SUB]``; one streamed pass."""
    k, group = i.numel(), max(1, rows.n)
    width = min(_SUB, rows.chunk, rows.d)
    acc = torch.zeros(k, dtype=torch.float64)
    left = torch.empty(group * width, dtype=torch.float64)
    right = torch.empty(group * width, dtype=torch.float64)
    for b in _slices(rows):
        c = b.shape[1]
        for g0 in range(0, k, group):
            ii, jj = i[g0 : g0 + group], j[g0 : g0 + group]
            m = ii.numel()
            diff = torch.index_select(b, 0, ii, out=left[: m * c].view(m, c))
            diff.sub_(torch.index_select(b, 0, jj, out=right[: m * c].view(m, c))).square_()
            acc[g0 : g0 + m] += diff.sum(1)
    return acc


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
