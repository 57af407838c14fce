"""Compact, deterministic sketches of updates: what the replay check keeps of earlier rounds.

A **count sketch** (Charikar et al., 2002) maps a ``[d]`` update to ``k`` numbers: coordinate ``j``
is added, with a random sign ``s(j)``, to bucket ``h(j)``. Inner products are preserved in
expectation (``E <S u, S v> = <u, v>``), so the cosine of two sketches estimates the cosine of the
updates with a standard error of about ``(1 - c^2) / sqrt(k)`` (about 0.03 for uncorrelated updates at
``k = 1024``), and an exact copy of an update has exactly the same sketch.

The hash ``(h, s)`` is drawn from a fixed seed (:data:`SKETCH_SEED`), chunk by chunk of
:data:`SKETCH_CHUNK` coordinates (the chunk ``c`` draws from ``SKETCH_SEED + c``), so the sketch is
computed streamed -- O(n * (k + chunk)) memory, never a ``d x k`` matrix -- and every party derives the
same hash for any ``d`` without storing it. Sums are accumulated in float64 and sequentially
(``index_add_`` on CPU), so one machine gives the same bits; across machines the float64 sums can
differ in their last bits only, far below float32 storage precision.

History costs ``O(k)`` per update: a round keeps the sketches of its own updates and of the
earlier rounds' within a bounded window (:data:`HISTORY_WINDOW` rounds, see
:mod:`deai.learn.scoring.novelty`).
"""

from __future__ import annotations

import torch

__all__ = ["HISTORY_WINDOW", "SKETCH_CHUNK", "SKETCH_DIM", "SKETCH_SEED", "count_sketch"]

SKETCH_DIM = 1024
"""``k``: numbers per sketched update."""
SKETCH_SEED = 0x5EED_C0DE
"""The fixed seed of the hash; a network-wide constant (changing it invalidates every history)."""
SKETCH_CHUNK = 1 << 16
"""Coordinates hashed per chunk (part of the hash's definition: fixed)."""
HISTORY_WINDOW = 16
"""Rounds of earlier updates kept for the replay check."""


def _hash(chunk: int, size: int, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(SKETCH_SEED + chunk)
    bucket = torch.randint(0, k, (size,), generator=g)
    sign = torch.randint(0, 2, (size,), generator=g).to(torch.float64) * 2 - 1
    return bucket, sign


def count_sketch(updates: torch.Tensor, k: int = SKETCH_DIM) -> torch.Tensor:
    """Float64 ``[n, k]`` count sketches of the rows of ``updates`` (``[n, d]``, or one ``[d]`` vector
    giving ``[1, k]``), computed chunk by chunk of the coordinates."""
    if updates.dim() == 1:
        updates = updates[None]
    if updates.dim() != 2 or k < 1:
        raise ValueError(f"count_sketch takes [n, d] rows and k >= 1, got {tuple(updates.shape)}, k={k}")
    n, d = updates.shape
    out = torch.zeros(n, k, dtype=torch.float64)
    for c, start in enumerate(range(0, d, SKETCH_CHUNK)):
        block = updates[:, start : start + SKETCH_CHUNK].double()
        bucket, sign = _hash(c, block.shape[1], k)
        out.index_add_(1, bucket, block * sign)
    return out
