"""The public parameters of one secure aggregation round, known to the server and every provider."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

from deai.core.accounts import check_address
from deai.core.encoding import canonical, sha256
from deai.protocol.secagg.graph import default_degree, neighbours
from deai.protocol.secagg.ring import Ring

__all__ = ["SecAggConfig"]


@dataclass(frozen=True)
class SecAggConfig:
    """Parameters of a round; every party derives the same ``round_id``, graph and ring from them.

    - ``roster``: the providers' account addresses; a provider is named by its index in it.
    - ``dim``: update length. ``clip``: each coordinate is clipped to [-clip, clip] before quantizing.
    - ``ring_bits``: 32 (4 bytes per coordinate on the wire) or 64.
    - ``degree``: neighbours per provider (default ~6 log2 n, even; n - 1 means everyone).
    - ``threshold``: shares needed to recover a provider's secret (default degree // 2 + 1). Must
      exceed half the degree so that no coalition below it learns a secret.
    - ``min_survivors``: providers that must reach each phase and sign the survivor set (default
      n // 2 + 1: two different survivor sets can never both collect enough signatures).
    - ``tag``: names the task and round, so keys and shares cannot be replayed in another round.
    """

    roster: tuple[str, ...]
    dim: int
    clip: float = 1.0
    ring_bits: int = 32
    degree: int | None = None
    threshold: int | None = None
    min_survivors: int | None = None
    tag: str = ""

    def __post_init__(self) -> None:
        roster = tuple(check_address(a) for a in self.roster)
        object.__setattr__(self, "roster", roster)
        n = len(roster)
        if n < 2 or len(set(roster)) != n:
            raise ValueError("a round needs at least 2 distinct providers")
        if self.dim < 1:
            raise ValueError("dim must be positive")
        degree = default_degree(n) if self.degree is None else self.degree
        threshold = degree // 2 + 1 if self.threshold is None else self.threshold
        if not degree // 2 < threshold <= degree:
            raise ValueError(f"threshold {threshold} must be in ({degree // 2}, {degree}]")
        min_surv = n // 2 + 1 if self.min_survivors is None else self.min_survivors
        if not n // 2 < min_surv <= n:
            raise ValueError(f"min_survivors must be in ({n // 2}, {n}]")
        object.__setattr__(self, "degree", degree)
        object.__setattr__(self, "threshold", threshold)
        object.__setattr__(self, "min_survivors", min_surv)
        if not math.isfinite(self.clip) or self.clip <= 0:
            raise ValueError("clip must be finite and positive")
        self.ring  # noqa: B018  (validates that n clipped updates fit the ring)

    @property
    def n(self) -> int:
        return len(self.roster)

    @property
    def graph_degree(self) -> int:
        """``degree`` as resolved at construction (never None once the config exists)."""
        return _resolved(self.degree)

    @property
    def shares_needed(self) -> int:
        """``threshold`` as resolved at construction: shares that recover a provider's secret."""
        return _resolved(self.threshold)

    @property
    def survivors_needed(self) -> int:
        """``min_survivors`` as resolved at construction."""
        return _resolved(self.min_survivors)

    @cached_property
    def round_id(self) -> bytes:
        """SHA-256 of the canonical parameters: binds every key, share and signature to this round."""
        return sha256(
            canonical(
                {
                    "protocol": "deai-secagg-v1",
                    "roster": list(self.roster),
                    "dim": self.dim,
                    "clip": self.clip,
                    "ring_bits": self.ring_bits,
                    "degree": self.degree,
                    "threshold": self.threshold,
                    "min_survivors": self.min_survivors,
                    "tag": self.tag,
                }
            )
        )

    @cached_property
    def ring(self) -> Ring:
        return Ring.for_sum(self.n, self.clip, self.ring_bits)

    @cached_property
    def graph(self) -> list[tuple[int, ...]]:
        return neighbours(self.n, self.graph_degree, self.round_id)

    @property
    def masked_bytes(self) -> int:
        return self.dim * self.ring.itemsize


def _resolved(value: int | None) -> int:
    if value is None:  # __post_init__ fills every default
        raise AssertionError("SecAggConfig default left unresolved")
    return value
