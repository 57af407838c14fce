"""The deterministic top-|x| selection shared by ``topk`` and ``chunked_topk``."""

from __future__ import annotations

import torch

__all__ = ["check_support", "top_abs_rows"]

from deai.learn.compression.errors import BadCompressed


def top_abs_rows(a: torch.Tensor, row_k: torch.Tensor) -> torch.Tensor:
    """Flat indices (int64, increasing) of the ``row_k[r]`` largest entries of each row of ``a``
    (``[R, C]``, non-negative; padding entries negative are never chosen while a row has enough
    real entries). Ties at a row's threshold go to the lowest column, so the choice does not depend
    on how ``torch.topk`` orders equal values: only the threshold (a value, not an index) is taken
    from it."""
    kk = int(row_k.max())
    top = torch.topk(a, kk, dim=1, largest=True, sorted=True).values
    thr = top.gather(1, (row_k - 1).view(-1, 1))
    take = a >= thr
    if bool((take.sum(1) == row_k).all()):  # no surplus ties at any threshold (the usual case)
        return take.reshape(-1).nonzero().flatten()
    above = a > thr
    need = row_k.view(-1, 1) - above.sum(1, keepdim=True)
    tied = a == thr
    take = above | (tied & (tied.cumsum(1) <= need))
    return take.reshape(-1).nonzero().flatten()


def check_support(indices: torch.Tensor, d: int, what: str) -> None:
    """:class:`BadCompressed` unless ``indices`` (int64) lie in ``[0, d)`` strictly increasing
    (so no index repeats: a repeated index could count a value twice)."""
    if indices.numel() == 0:
        return
    if int(indices[0]) < 0 or int(indices[-1]) >= d:
        raise BadCompressed(f"{what}: indices outside [0, {d})")
    if indices.numel() > 1 and not bool((indices[1:] > indices[:-1]).all()):
        raise BadCompressed(f"{what}: indices are not strictly increasing")
