"""Settlement: accumulate a task's scores, split its budget, post one Merkle root, pay by claims.

1. :class:`ScoreBook` accumulates each round's contribution scores per provider address (the
   outputs of the round's ``contribution_score`` jobs, :mod:`deai.protocol.jobs.kinds.contribution_score`).
2. :func:`verified_work` reads the task's resolved jobs from the ledger: each accepted executor
   earned the job's fee; faulted and silent ones earned nothing.
3. :func:`allocate` (:mod:`deai.protocol.incentives.split`) splits the task's remaining budget.
4. :class:`Settlement` is the allocation's Merkle tree (:func:`deai.ledger.merkle.payout_tree`):
   :meth:`Settlement.post` sends one ``post_payout_root`` (O(1) ledger work whatever the number of
   participants) and each participant sends its own ``claim`` with its proof
   (:meth:`Settlement.claim`); the ledger refuses a second claim and any amount not in the tree.

Per-round settlement is the same with ``epoch = round`` and a rule applied to that round's share of
the budget; the end-of-task settlement uses the next unused epoch.

The network settles **per round** through :mod:`deai.protocol.task.settlement` (``post_round``),
which uses :class:`ScoreBook`, :func:`verified_work`, ``allocate`` and the payout tree of this
layer. :func:`settle_task` -- one end-of-task settlement for a caller that coordinates a task
itself -- is a **library piece** that nothing in ``deai simulate``/``demo``/``up`` calls.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from deai.core.accounts import Account, check_address
from deai.learn.scoring import Flag, ScoreResult
from deai.ledger.base import Ledger, Receipt
from deai.ledger.merkle import AllocationTree, payout_tree
from deai.ledger.txs import ClaimPayout, PostPayoutRoot
from deai.protocol.incentives.errors import BadScores, SettlementError
from deai.protocol.incentives.split import Allocation, SplitRule, allocate

__all__ = ["ScoreBook", "Settlement", "settle_task", "verified_work"]

_FLAGS = {int(f): f.name for f in Flag}


@dataclass
class ScoreBook:
    """Per-round scores by address, and their totals. ``duplicates`` maps a merged copy to the
    address whose update it copied (per round); ``flags`` the novelty flag of each flagged address
    (:class:`deai.learn.scoring.Flag` names, per round; unflagged addresses are absent);
    ``replays`` what a replayed update replayed, ``(round, address)``; ``jobs`` the scoring job of
    each round."""

    rounds: dict[int, dict[str, float]] = field(default_factory=dict)
    duplicates: dict[int, dict[str, str]] = field(default_factory=dict)
    jobs: dict[int, str] = field(default_factory=dict)
    method: str = ""
    flags: dict[int, dict[str, str]] = field(default_factory=dict)
    replays: dict[int, dict[str, tuple[int, str]]] = field(default_factory=dict)

    def add(
        self,
        round: int,
        addresses: Sequence[str],
        scores: ScoreResult | torch.Tensor | Sequence[float],
        *,
        duplicate_of: Sequence[int] | torch.Tensor | None = None,
        job: str | None = None,
        flags: Sequence[int] | torch.Tensor | None = None,
        replay_of: Sequence[tuple[int, str] | None] | None = None,
    ) -> None:
        """Record round ``round``'s scores, ``scores[i]`` for ``addresses[i]`` (the score job's order).

        ``flags``: the score job's ``flags`` output (one :class:`~deai.learn.scoring.Flag` value per
        address); ``replay_of``: for a ``REPLAY``-flagged address, the ``(round, address)`` whose
        update it replayed (resolved by the caller from the history input's ``sketch_age`` and
        ``sketch_index`` at the job's ``source`` row), else None. Both optional.
        """
        if round in self.rounds:
            raise BadScores(f"round {round} is already in the score book")
        if isinstance(scores, ScoreResult):
            duplicate_of = scores.duplicate_of if duplicate_of is None else duplicate_of
            self.method = self.method or scores.method
            scores = scores.scores
        values = [float(s) for s in scores]
        addrs = [check_address(a) for a in addresses]
        if len(values) != len(addrs) or len(set(addrs)) != len(addrs):
            raise BadScores(f"{len(values)} scores for {len(addrs)} addresses (must match, no repeats)")
        if not all(v == v and abs(v) != float("inf") for v in values):
            raise BadScores("scores must be finite")
        # everything is checked before anything is recorded: a refused add leaves the book as it was
        dups = [int(d) for d in duplicate_of] if duplicate_of is not None else [-1] * len(addrs)
        if len(dups) != len(addrs) or any(not -1 <= d < len(addrs) for d in dups):
            raise BadScores("duplicate_of must hold one index (or -1) per address")
        fl = [int(f) for f in flags] if flags is not None else [0] * len(addrs)
        if len(fl) != len(addrs) or any(f not in _FLAGS for f in fl):
            raise BadScores(f"flags must hold one of {sorted(_FLAGS)} per address")
        reps = list(replay_of) if replay_of is not None else [None] * len(addrs)
        if len(reps) != len(addrs):
            raise BadScores("replay_of must hold one entry (or None) per address")
        replays: dict[str, tuple[int, str]] = {}
        for a, rep in zip(addrs, reps, strict=True):
            if rep is not None:
                r0, a0 = rep
                if not isinstance(r0, int) or isinstance(r0, bool) or not 0 <= r0 < round:
                    raise BadScores(f"replay_of: round {r0!r} is not an earlier round")
                replays[a] = (r0, check_address(a0))
        self.rounds[round] = dict(zip(addrs, values, strict=True))
        self.duplicates[round] = {addrs[i]: addrs[d] for i, d in enumerate(dups) if d >= 0}
        self.flags[round] = {a: _FLAGS[f] for a, f in zip(addrs, fl, strict=True) if f}
        self.replays[round] = replays
        if job is not None:
            self.jobs[round] = job

    def totals(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for scores in self.rounds.values():
            for a, s in scores.items():
                out[a] = out.get(a, 0.0) + s
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "rounds": {str(r): s for r, s in sorted(self.rounds.items())},
            "duplicates": {str(r): d for r, d in sorted(self.duplicates.items()) if d},
            "flags": {str(r): f for r, f in sorted(self.flags.items()) if f},
            "replays": {
                str(r): {a: list(v) for a, v in p.items()} for r, p in sorted(self.replays.items()) if p
            },
            "jobs": {str(r): j for r, j in sorted(self.jobs.items())},
            "totals": dict(sorted(self.totals().items())),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ScoreBook:
        try:
            book = cls(method=str(data.get("method", "")))
            for r, scores in data["rounds"].items():
                addrs = list(scores)
                dup_map = data.get("duplicates", {}).get(r, {})
                dups = [addrs.index(dup_map[a]) if a in dup_map else -1 for a in addrs]
                flag_map = data.get("flags", {}).get(r, {})
                rep_map = data.get("replays", {}).get(r, {})
                book.add(
                    int(r),
                    addrs,
                    [scores[a] for a in addrs],
                    duplicate_of=dups,
                    job=data.get("jobs", {}).get(r),
                    flags=[int(Flag[flag_map[a]]) if a in flag_map else 0 for a in addrs],
                    replay_of=[
                        (int(rep_map[a][0]), str(rep_map[a][1])) if a in rep_map else None for a in addrs
                    ],
                )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise BadScores(f"malformed score book: {exc}") from exc
        return book


def verified_work(ledger: Ledger, job_ids: Iterable[str]) -> tuple[dict[str, int], list[dict[str, Any]]]:
    """``(address -> sum of fees of accepted job slots, job records)`` for the given jobs."""
    work: dict[str, int] = {}
    records = []
    for job_id in job_ids:
        job = ledger.job(job_id)
        if job is None:
            raise SettlementError(f"no job {job_id} on the ledger")
        records.append({"job": job_id, **job.to_json()})
        if job.status != "accepted":
            continue
        for e in job.accepted:
            work[e] = work.get(e, 0) + job.fee
    return work, records


@dataclass
class Settlement:
    """An allocation as a Merkle tree, for one payout ``epoch`` of ``task``."""

    task: str
    epoch: int
    allocation: Allocation
    tree: AllocationTree

    @classmethod
    def build(cls, task: str, epoch: int, allocation: Allocation) -> Settlement:
        if allocation.total <= 0:
            raise SettlementError(f"nothing to pay for task {task}: the allocation is empty")
        return cls(task, epoch, allocation, payout_tree(allocation.amounts))

    @property
    def root(self) -> str:
        return self.tree.root

    def proof(self, address: str) -> list[str]:
        return self.tree.proof(address)

    def post(self, ledger: Ledger, coordinator: Account, *, job: str | None = None) -> Receipt:
        """Send ``post_payout_root`` (moves the total out of the task budget into the payout)."""
        return ledger.send(
            coordinator,
            PostPayoutRoot(task=self.task, epoch=self.epoch, root=self.root, total=self.tree.total, job=job),
        )

    def claim(self, ledger: Ledger, account: Account) -> Receipt:
        """``account`` claims its amount with its proof."""
        address = check_address(account.address)
        amount = self.tree.amounts.get(address)
        if amount is None:
            raise SettlementError(
                f"{address} has nothing in the payout of task {self.task} epoch {self.epoch}"
            )
        return ledger.send(
            account,
            ClaimPayout(task=self.task, epoch=self.epoch, amount=amount, proof=tuple(self.proof(address))),
        )

    def to_json(self) -> dict[str, Any]:
        """The settlement document participants fetch: allocation, root and each one's proof."""
        return {
            "task": self.task,
            "epoch": self.epoch,
            "root": self.root,
            "allocation": self.allocation.to_json(),
            "proofs": {a: self.proof(a) for a in sorted(self.tree.amounts)},
        }


def settle_task(
    ledger: Ledger,
    coordinator: Account,
    task: str,
    rule: SplitRule,
    book: ScoreBook,
    job_ids: Iterable[str] = (),
    *,
    epoch: int | None = None,
    budget: int | None = None,
) -> Settlement:
    """Split the task's remaining budget (or ``budget`` of it) by ``rule`` and post the root."""
    record = ledger.task(task)
    if record is None:
        raise SettlementError(f"no task {task} on the ledger")
    available = record.budget if budget is None else budget
    if available > record.budget:
        raise SettlementError(f"task {task} holds {record.budget}, cannot settle {available}")
    if epoch is None:
        epoch = 0
        while ledger.payout(task, epoch) is not None:
            epoch += 1
    work, _ = verified_work(ledger, job_ids)
    settlement = Settlement.build(task, epoch, allocate(available, rule, book.totals(), work))
    settlement.post(ledger, coordinator)
    return settlement
