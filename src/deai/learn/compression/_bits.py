"""Integer helpers of the wire format: bit packing, 16-bit offsets held in int16, a 64-bit mixer.

Everything here is exact integer arithmetic on whole tensors (no reductions whose order could
vary), so every executor computes the same bits.
"""

from __future__ import annotations

import torch

__all__ = ["from_u16", "mix64", "mix64_range", "pack_codes", "to_u16", "unpack_codes"]


def pack_codes(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """Pack ``codes`` (uint8, each ``< 2**bits``) ``8 // bits`` to a byte, the first code in the
    lowest bits; the last byte is padded with zero codes. ``bits`` is 2, 4 or 8."""
    if bits == 8:
        return codes.to(torch.uint8).clone()
    per = 8 // bits
    n = codes.numel()
    padded = torch.zeros((n + per - 1) // per * per, dtype=torch.int32)
    padded[:n] = codes.to(torch.int32)
    shifts = torch.arange(per, dtype=torch.int32) * bits
    # the codes of one byte occupy disjoint bits, so their sum is their bitwise or
    return (padded.view(-1, per) << shifts).sum(1, dtype=torch.int32).to(torch.uint8)


def unpack_codes(packed: torch.Tensor, bits: int, n: int) -> tuple[torch.Tensor, bool]:
    """Inverse of :func:`pack_codes`: ``n`` codes as uint8, and whether the padding codes of the
    last byte are all zero (a canonical encoding: no hidden bits)."""
    if bits == 8:
        return packed, True
    per = 8 // bits
    shifts = torch.arange(per, dtype=torch.int32) * bits
    codes = ((packed.to(torch.int32).view(-1, 1) >> shifts) & ((1 << bits) - 1)).reshape(-1)
    pad_clean = not bool(codes[n:].any())
    return codes[:n].to(torch.uint8), pad_clean


def to_u16(values: torch.Tensor) -> torch.Tensor:
    """Integers in ``[0, 65536)`` as int16 holding their 16 bits (two's complement)."""
    v = values.to(torch.int32)
    return torch.where(v >= 32768, v - 65536, v).to(torch.int16)


def from_u16(values: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`to_u16`: int16 bits read as unsigned 16-bit integers, as int64."""
    return values.to(torch.int64) & 0xFFFF


_M1 = 0xBF58476D1CE4E5B9 - (1 << 64)  # the splitmix64 multipliers as signed int64
_M2 = 0x94D049BB133111EB - (1 << 64)


def _mix_int(z: int) -> int:
    """:func:`mix64` of one Python integer (mod 2**64, returned as a signed int64 value)."""
    mask = (1 << 64) - 1
    z &= mask
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
    z ^= z >> 31
    return z - (1 << 64) if z >= 1 << 63 else z


def mix64(z: torch.Tensor, salt: int) -> torch.Tensor:
    """The splitmix64 finalizer of ``z ^ mix(salt)`` on int64 bits, wrapping mod 2**64.

    A bijection of 64-bit integers for a fixed ``salt`` (xor with a constant, xor-shifts and odd
    multipliers are each invertible), so distinct inputs give distinct outputs: sorting by it is a
    tie-free pseudo-random permutation. Defined by integer arithmetic alone, so it does not depend
    on torch's random number generators (whose streams may change between versions or devices).
    """
    z = z.to(torch.int64) ^ _mix_int(salt)  # a new tensor: the steps below work in place
    t = torch.empty_like(z)
    for shift, mult in ((30, _M1), (27, _M2), (31, None)):
        torch.bitwise_right_shift(z, shift, out=t)
        t &= (1 << (64 - shift)) - 1  # a logical shift: clear the copies of the sign bit
        z ^= t
        if mult is not None:
            z *= mult
    return z


def mix64_range(d: int, salt: int, block: int = 1 << 16) -> torch.Tensor:
    """``mix64(arange(d), salt)``, computed block by block (each block stays in cache)."""
    out = torch.empty(d, dtype=torch.int64)
    for lo in range(0, d, block):
        hi = min(d, lo + block)
        out[lo:hi] = mix64(torch.arange(lo, hi, dtype=torch.int64), salt)
    return out
