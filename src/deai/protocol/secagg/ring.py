"""Fixed-point quantization of float updates into the ring Z_{2^k} (k = 32 or 64).

Each coordinate is clipped to [-clip, clip] and scaled by 2^f, f chosen so the sum of n clipped
updates fills at most a quarter of the ring: |sum| <= n * clip * 2^f <= 2^(k-2). The sum can then
never wrap, and a decoded coordinate outside that range proves the round is corrupt (a provider
masked with the wrong keys), which the server reports instead of returning a wrong sum.

Rounding to nearest makes each provider's error at most 2^-(f+1) per coordinate, so a sum of m
updates is within ``m * 2^-(f+1)`` of the sum of the clipped floats (:meth:`Ring.error_bound`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from deai.protocol.secagg.errors import NonFiniteInput, RoundAborted

__all__ = ["Ring"]

_DTYPES: dict[int, type[np.unsignedinteger]] = {32: np.uint32, 64: np.uint64}
_SIGNED = {32: np.int32, 64: np.int64}


@dataclass(frozen=True)
class Ring:
    """Z_{2^bits} with ``frac_bits`` fractional bits, sized for ``n`` updates bounded by ``clip``."""

    bits: int
    frac_bits: int
    clip: float

    @classmethod
    def for_sum(cls, n: int, clip: float, bits: int = 32) -> Ring:
        if bits not in _DTYPES:
            raise ValueError(f"ring bits must be 32 or 64, got {bits}")
        if not (math.isfinite(clip) and clip > 0) or n < 1:
            raise ValueError("clip must be finite and positive, n >= 1")
        frac = math.floor((bits - 2) - math.log2(n * clip))
        if frac < 0:
            raise ValueError(f"{n} updates clipped at {clip} do not fit a {bits}-bit ring; use 64 bits")
        return cls(bits, frac, float(clip))

    @property
    def dtype(self) -> type[np.unsignedinteger]:
        return _DTYPES[self.bits]

    @property
    def itemsize(self) -> int:
        return self.bits // 8

    def error_bound(self, m: int) -> float:
        """Max |decoded sum - sum of the clipped updates| per coordinate for a sum of m updates."""
        return m * 2.0 ** -(self.frac_bits + 1)

    def encode(self, x: np.ndarray) -> tuple[np.ndarray, int]:
        """Clip and quantize a float vector; returns (ring vector, number of clipped coordinates)."""
        x = np.asarray(x, dtype=np.float64)
        if not np.isfinite(x).all():
            raise NonFiniteInput(f"update holds {int((~np.isfinite(x)).sum())} non-finite values")
        clipped = int((np.abs(x) > self.clip).sum())
        q = np.rint(np.clip(x, -self.clip, self.clip) * 2.0**self.frac_bits).astype(np.int64)
        return q.astype(self.dtype), clipped  # integer casts wrap modulo 2^bits

    def decode(self, total: np.ndarray, m: int) -> np.ndarray:
        """The float sum of m updates from their ring sum; raises if it lies outside the valid range."""
        signed = np.asarray(total, dtype=self.dtype).view(_SIGNED[self.bits]).astype(np.int64)
        limit = m * self.clip * 2.0**self.frac_bits + m
        if signed.size and np.abs(signed).max() > limit:
            bad = int((np.abs(signed) > limit).sum())
            raise RoundAborted(
                f"{bad} coordinates of the unmasked sum lie outside the range of {m} clipped updates: "
                "a provider masked incorrectly; the sum is discarded"
            )
        return signed.astype(np.float64) / 2.0**self.frac_bits
