"""Deterrence: the least stake that makes cheating unprofitable, and the attacker's majority chance.

A cheater saves the job's cost (worth the fee ``k``) when unchecked (probability ``1 - p``) or when it
holds the majority of a replicated job (probability ``p q``), and loses its stake ``S`` when checked
and outvoted (probability ``p (1 - q)``). Cheating does not pay when

    S >= ((1 - p) k + p q k) / (p (1 - q))

(DESIGN.md, "Verified job"). ``q`` is the attacker's chance of holding a strict majority of the
``r`` drawn executors; with a fraction ``f`` of the draw weight it is at most the binomial tail
:func:`majority_chance` (drawing without replacement only lowers it for ``f < 1/2``). Audits of
unreplicated jobs with probability ``a`` raise the effective check probability to
``p + (1 - p) a`` (:func:`effective_check`).

The ledger enforces ``stake >= fee * stake_fee_ratio_bps / 10,000`` when drawing executors
(:class:`deai.ledger.config.NetworkConfig`); :func:`required_ratio_bps` gives the ratio for a
``(p, q)``, and :func:`check_stake` refuses a stake below the break-even.
"""

from __future__ import annotations

import math

from deai.protocol.jobs.errors import StakeTooLow

__all__ = ["check_stake", "effective_check", "majority_chance", "min_stake", "required_ratio_bps"]


def min_stake(fee: float, p: float, q: float) -> float:
    """Break-even stake for fee ``fee``, check probability ``p`` and attacker-majority chance ``q``."""
    if not 0.0 < p <= 1.0:
        raise ValueError(f"the check probability p must lie in (0, 1], got {p}")
    if not 0.0 <= q < 1.0:
        raise ValueError(f"the attacker's majority chance q must lie in [0, 1), got {q}")
    if fee < 0:
        raise ValueError(f"fee must be non-negative, got {fee}")
    return ((1.0 - p) * fee + p * q * fee) / (p * (1.0 - q))


def required_ratio_bps(p: float, q: float) -> int:
    """The stake-to-fee ratio (basis points, rounded up) the ledger must enforce for ``(p, q)``."""
    return math.ceil(min_stake(10_000.0, p, q) - 1e-9)


def check_stake(stake: int, fee: int, p: float, q: float) -> None:
    """Raise :class:`StakeTooLow` if ``stake`` is below the break-even for ``fee``."""
    need = min_stake(fee, p, q)
    if stake < need:
        raise StakeTooLow(
            f"stake {stake} is below the break-even {math.ceil(need)} for fee {fee} (p={p:g}, q={q:g})"
        )


def majority_chance(fraction: float, r: int) -> float:
    """P(an attacker with ``fraction`` of the draw weight holds > r/2 of ``r`` slots), binomial bound."""
    if not 0.0 <= fraction <= 1.0 or r < 1:
        raise ValueError(f"need 0 <= fraction <= 1 and r >= 1, got {fraction}, {r}")
    need = r // 2 + 1
    return sum(math.comb(r, i) * fraction**i * (1 - fraction) ** (r - i) for i in range(need, r + 1))


def effective_check(p: float, audit: float) -> float:
    """Probability a result is re-executed: replicated, or unreplicated and audited."""
    return p + (1.0 - p) * audit
