"""The executor draw: weighted sampling without replacement, recomputable by anyone.

``draw_executors(candidates, seed, k)`` picks ``k`` distinct addresses; at each of the ``k`` steps an
address still in the pool is chosen with probability weight / remaining weight (successive
sampling). The randomness of step ``i`` is ``sha256(seed ‖ i)`` read as a 256-bit integer, reduced
modulo the remaining weight (the bias is below 2**-190 for weights under 2**64). Only integers
and SHA-256 are involved -- no floating point -- so a contract or another language gets the same
draw bit for bit. Candidates are taken in address order, so the caller's order does not matter.

The ledger uses ``seed = sha256(head hash ‖ job id)`` (:func:`draw_seed`), where the head hash is
the hash of the last log entry before the job's registration, and weight = role stake times the
reputation factor (:func:`draw_weight`). A Sybil who splits a stake over many identities splits
its weight the same way: each slot is still drawn with probability proportional to stake.
"""

from __future__ import annotations

from collections.abc import Iterable

from deai.core.encoding import from_hex, sha256
from deai.ledger.config import BPS, NetworkConfig
from deai.ledger.errors import LedgerError

__all__ = ["draw_executors", "draw_seed", "draw_weight", "reputation_factor_bps"]


def draw_seed(head_hash: str, job_id: str) -> bytes:
    """The seed of a job's draw: sha256(head hash ‖ job id), both 32-byte 0x-hex."""
    return sha256(
        from_hex(head_hash, length=32, what="head hash") + from_hex(job_id, length=32, what="job id")
    )


def reputation_factor_bps(config: NetworkConfig, score: int) -> int:
    """clamp(10,000 + score * rep_step_bps, rep_min_bps, rep_max_bps)."""
    return max(config.rep_min_bps, min(config.rep_max_bps, BPS + score * config.rep_step_bps))


def draw_weight(config: NetworkConfig, stake: int, score: int) -> int:
    """An executor's draw weight: stake * reputation factor (integer, in stake units)."""
    return stake * reputation_factor_bps(config, score) // BPS


def draw_executors(candidates: Iterable[tuple[str, int]], seed: bytes, k: int) -> list[str]:
    """Draw ``k`` distinct addresses from ``(address, weight)`` pairs; zero weights never win."""
    pool = sorted((a, w) for a, w in candidates if w > 0)
    if len({a for a, _ in pool}) != len(pool):
        raise LedgerError("draw candidates contain an address twice")
    if k > len(pool):
        raise LedgerError(f"cannot draw {k} executors from {len(pool)} candidates")
    total = sum(w for _, w in pool)
    chosen: list[str] = []
    for step in range(k):
        r = int.from_bytes(sha256(seed + step.to_bytes(4, "big")), "big") % total
        for i, (address, weight) in enumerate(pool):
            if r < weight:
                chosen.append(address)
                total -= weight
                del pool[i]
                break
            r -= weight
    return chosen
