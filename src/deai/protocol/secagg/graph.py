"""The sparse neighbour graph of SecAgg+ (Bell et al., CCS 2020).

Providers are placed on a ring in a seeded random order and each is linked to the ``degree / 2``
nearest on either side (a Harary graph of a random permutation): every provider masks with and
shares its secrets among only ``degree = O(log n)`` peers. Anyone holding the seed recomputes it.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np

__all__ = ["default_degree", "neighbours"]


def default_degree(n: int) -> int:
    """An even degree of about 6 log2(n) (40 for n = 100), or everyone when n is small.

    With a threshold just above half the degree, a neighbourhood of this size keeps enough shares
    with high probability when a random third of the providers drop out.
    """
    if n <= 1:
        return 0
    return min(n - 1, 2 * math.ceil(3 * math.log2(n)))


def neighbours(n: int, degree: int, seed: bytes) -> list[tuple[int, ...]]:
    """The sorted neighbour tuple of each provider 0..n-1 (symmetric, no self loops)."""
    if degree == n - 1:
        return [tuple(v for v in range(n) if v != u) for u in range(n)]
    if degree % 2 or not 0 < degree < n - 1:
        raise ValueError(f"degree must be even and in (0, {n - 1}) or equal {n - 1}, got {degree}")
    key = int.from_bytes(hashlib.sha256(b"deai-secagg-graph" + seed).digest()[:16], "big")
    order = np.random.Generator(np.random.Philox(key=key)).permutation(n)
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n)
    out = []
    for u in range(n):
        offs = np.concatenate([np.arange(1, degree // 2 + 1), -np.arange(1, degree // 2 + 1)])
        out.append(tuple(sorted(int(v) for v in order[(position[u] + offs) % n])))
    return out
