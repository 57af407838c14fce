"""Hidden sampling: the creator's secret, committed choice of whether a job is replicated.

At registration the ledger always draws ``r`` executors in order. The creator privately decides
``replicated`` (with probability ``p``) and a ``primary`` index in ``[0, r)``, and posts only the
commitment ``keccak256(job ‖ replicated ‖ primary ‖ salt)``
(:func:`deai.ledger.commitments.replication_commitment`). It then activates, off the ledger, either
the primary alone or all ``r``. After the commit deadline it reveals the choice; the ledger checks it
against the commitment. Every drawn executor sees the same job metadata on the ledger either way.

Audits: an unreplicated result may be re-executed later with probability ``q_audit``. Whether a job
is audited is derived from a beacon that does not exist before the results are in (e.g. the ledger
head after resolution), so neither the executor nor the creator can steer it, and anyone can check.

Expected compute per job: ``1 + (r - 1) p`` executions (plus ``(1 - p) q_audit`` for audits).
"""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass

from deai.core.encoding import from_hex, sha256, to_hex
from deai.ledger.commitments import replication_commitment
from deai.protocol.jobs.errors import ReplicationMismatch

__all__ = ["ReplicationChoice", "audit_selected", "expected_overhead", "uniform"]


def uniform(*parts: bytes) -> float:
    """A number in [0, 1) from SHA-256 of ``parts`` (53 bits, like ``random.random``)."""
    return (int.from_bytes(sha256(b"".join(parts))[:8], "big") >> 11) / 2.0**53


@dataclass(frozen=True)
class ReplicationChoice:
    """The creator's secret: replicated or not, the primary's index, and the commitment's salt."""

    job: str
    replicated: bool
    primary: int
    salt: str

    @classmethod
    def draw(cls, job: str, p: float, r: int, rng: random.Random | None = None) -> ReplicationChoice:
        """Replicate with probability ``p``; pick the primary uniformly. ``rng`` for reproducible runs
        (the default draws from the OS: an executor must not be able to predict the choice)."""
        if not 0.0 <= p <= 1.0 or r < 1:
            raise ValueError(f"need 0 <= p <= 1 and r >= 1, got p={p}, r={r}")
        if rng is None:
            rng = random.Random(secrets.token_bytes(32))
        salt = to_hex(rng.randbytes(32))
        replicated = r > 1 and rng.random() < p
        return cls(job, replicated, rng.randrange(r), salt)

    @property
    def commitment(self) -> str:
        return replication_commitment(self.job, self.replicated, self.primary, self.salt)

    def active(self, r: int) -> list[int]:
        """Indices of the drawn executors that execute: all ``r``, or only the primary."""
        return list(range(r)) if self.replicated else [self.primary]

    def check(self, commitment: str) -> None:
        if self.commitment != commitment:
            raise ReplicationMismatch(
                f"replication reveal (replicated={self.replicated}, primary={self.primary}) "
                f"does not match the registered commitment {commitment[:14]}..."
            )


def audit_selected(beacon: str, job: str, q_audit: float) -> bool:
    """Whether an unreplicated job is audited: ``uniform(beacon ‖ job) < q_audit``."""
    if not 0.0 <= q_audit <= 1.0:
        raise ValueError(f"audit probability must lie in [0, 1], got {q_audit}")
    return (
        uniform(b"audit", from_hex(beacon, what="beacon"), from_hex(job, length=32, what="job id")) < q_audit
    )


def expected_overhead(p: float, r: int) -> float:
    """Expected executions per job relative to running it once: ``1 + (r - 1) p``."""
    return 1.0 + (r - 1) * p
