"""Reputation from verified outcomes, posted as ``update_reputation`` by the reputation oracle.

The ledger itself already moves a compute provider's reputation when it resolves a job
(``rep_job_win`` for each accepted executor, ``rep_job_fault`` for each faulted one). The oracle
adds what only the protocol knows, per account and role, from public records anyone can recheck:

- **agreement in replicated jobs** (compute): an accepted executor of a *replicated* job matched
  independent executors -- stronger evidence than an unreplicated acceptance;
- **timeouts** (compute): a required executor that never revealed (silent) in a job;
- **slashes** (data): a task member slashed by its coordinator (``member_slashed`` events);
- **contribution scores** (data): a positive accumulated score, a non-positive one, a merged copy.

:func:`reputation_deltas` computes the deltas (summed per account and role, with the reasons);
:func:`apply_reputation` sends them, one transaction per (account, role). Reputation weights
executor draws through :func:`deai.ledger.draw.draw_weight` and is shown by ``deai incentives``.

**A library piece, not a network feature.** Nothing ``deai simulate``, ``deai demo`` or ``deai up``
runs calls this module: on the network, reputation moves only by the ledger's job rules above. To
wire it, a hub would need an oracle account (``reputation_oracle`` in the genesis config; the ledger
accepts ``update_reputation`` from it only) and a plugin that runs :func:`reputation_deltas` over
each closed task and sends :func:`apply_reputation`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from deai.core.accounts import Account
from deai.ledger.base import Ledger, Receipt
from deai.ledger.config import DATA
from deai.ledger.txs import UpdateReputation
from deai.protocol.incentives.settlement import ScoreBook

__all__ = ["ReputationDelta", "ReputationPolicy", "apply_reputation", "reputation_deltas"]


@dataclass(frozen=True)
class ReputationPolicy:
    """Points per outcome (the ledger clamps scores to +-1,000,000)."""

    replicated_agreement: int = 1
    timeout: int = -3
    member_slashed: int = -5
    positive_score: int = 2
    nonpositive_score: int = -2
    copy: int = -3


@dataclass(frozen=True)
class ReputationDelta:
    account: str
    role: str
    delta: int
    reasons: tuple[str, ...]

    @property
    def reason(self) -> str:
        text = ", ".join(self.reasons)
        return text if len(text) <= 64 else text[:61] + "..."


def reputation_deltas(
    ledger: Ledger,
    task: str | None,
    book: ScoreBook | None,
    job_ids: Iterable[str] = (),
    policy: ReputationPolicy | None = None,
) -> list[ReputationDelta]:
    """The oracle's updates for a task's verified outcomes (see the module docstring)."""
    policy = policy or ReputationPolicy()
    acc: dict[tuple[str, str], list] = {}

    def add(account: str, role: str, delta: int, reason: str) -> None:
        if delta:
            entry = acc.setdefault((account, role), [0, {}])
            entry[0] += delta
            entry[1][reason] = entry[1].get(reason, 0) + 1

    for job_id in job_ids:
        job = ledger.job(job_id)
        if job is None or job.status == "open":
            continue
        role = job.role
        if job.replicated:
            for e in job.accepted:
                add(e, role, policy.replicated_agreement, "replicated agreement")
        for e in job.faulted:
            if ledger.revealed(job_id, e) is None:
                add(e, role, policy.timeout, "timeout")
    if task is not None:
        for ev in ledger.events():
            if ev.kind == "member_slashed" and ev.data["task"] == task:
                add(ev.data["account"], DATA, policy.member_slashed, "slashed in task")
    if book is not None:
        copied = {a for d in book.duplicates.values() for a in d}
        for a, s in book.totals().items():
            if a in copied:
                add(a, DATA, policy.copy, "copied update")
            elif s > 0:
                add(a, DATA, policy.positive_score, "positive contribution")
            else:
                add(a, DATA, policy.nonpositive_score, "no positive contribution")
    out = []
    for (account, role), (delta, reasons) in sorted(acc.items()):
        if delta:
            labels = tuple(f"{r} x{c}" if c > 1 else r for r, c in reasons.items())
            out.append(ReputationDelta(account, role, delta, labels))
    return out


def apply_reputation(ledger: Ledger, oracle: Account, deltas: Iterable[ReputationDelta]) -> list[Receipt]:
    """Send one ``update_reputation`` per delta, signed by the network's reputation oracle."""
    return [
        ledger.send(oracle, UpdateReputation(account=d.account, role=d.role, delta=d.delta, reason=d.reason))
        for d in deltas
    ]
