"""Shamir t-of-n secret sharing of 32-byte secrets over the prime field GF(2**256 + 297).

Written here because ``cryptography`` has no secret sharing and PyCryptodome's ``Shamir`` works on
16-byte secrets with an unseedable random source (we need seeded runs for reproducible simulations).
Arithmetic uses Python integers; n and t are small (a provider's neighbourhood), so this is cheap.

Any t shares recover the secret; t - 1 shares reveal nothing about it. Combining does not check that
the shares lie on one polynomial: callers check the recovered secret against a commitment.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from deai.protocol.secagg.errors import MalformedMessage, RoundAborted

__all__ = ["PRIME", "SECRET_BYTES", "SHARE_BYTES", "combine", "decode_share", "encode_share", "split"]

PRIME = 2**256 + 297  # the smallest prime above 2**256, so every 32-byte secret is a field element
SECRET_BYTES = 32
SHARE_BYTES = 33


def split(
    secret: bytes, xs: Sequence[int], threshold: int, random_bytes: Callable[[int], bytes]
) -> list[int]:
    """Shares of ``secret`` at the nonzero points ``xs``; any ``threshold`` of them recover it."""
    if len(secret) != SECRET_BYTES:
        raise ValueError(f"a secret is {SECRET_BYTES} bytes")
    if not 1 <= threshold <= len(xs):
        raise ValueError(f"threshold {threshold} must lie in [1, {len(xs)}]")
    if len(set(xs)) != len(xs) or any(not 0 < x < PRIME for x in xs):
        raise ValueError("share points must be distinct and nonzero")
    # 72 random bytes per coefficient: reducing 576 bits mod a 257-bit prime has bias < 2**-300.
    coeffs = [int.from_bytes(secret, "big")]
    coeffs += [int.from_bytes(random_bytes(72), "big") % PRIME for _ in range(threshold - 1)]
    shares = []
    for x in xs:
        y = 0
        for c in reversed(coeffs):  # Horner
            y = (y * x + c) % PRIME
        shares.append(y)
    return shares


def combine(points: Sequence[tuple[int, int]]) -> bytes:
    """The secret from (x, y) shares by Lagrange interpolation at 0 (uses every point given)."""
    xs = [x for x, _ in points]
    if not points or len(set(xs)) != len(xs):
        raise RoundAborted("shares to combine must be nonempty with distinct points")
    secret = 0
    for i, (xi, yi) in enumerate(points):
        num, den = 1, 1
        for j, xj in enumerate(xs):
            if j != i:
                num = num * (-xj) % PRIME
                den = den * (xi - xj) % PRIME
        secret = (secret + yi * num * pow(den, -1, PRIME)) % PRIME
    if secret >= 2 ** (8 * SECRET_BYTES):
        raise RoundAborted("shares are inconsistent: the interpolated value is not a 32-byte secret")
    return secret.to_bytes(SECRET_BYTES, "big")


def encode_share(y: int) -> bytes:
    return y.to_bytes(SHARE_BYTES, "big")


def decode_share(data: bytes) -> int:
    if len(data) != SHARE_BYTES:
        raise MalformedMessage(f"a share is {SHARE_BYTES} bytes, got {len(data)}")
    y = int.from_bytes(data, "big")
    if y >= PRIME:
        raise MalformedMessage("a share is not a field element")
    return y
