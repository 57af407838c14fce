"""Settlement of a round and provenance of the final model, by the incentives layer's rules.

**Per round** (one ``post_payout_root`` per round, whatever the number of providers): the round's
pool is ``budget // rounds``. First the coordinator is reimbursed the fees it paid the executors of
the round's accepted jobs (``fee`` per accepted executor, visible on the ledger). The rest is split
by the task's :class:`~deai.protocol.incentives.split.SplitRule`
(:func:`~deai.protocol.incentives.split.allocate`): a compute pool shared by the accepted
executors in proportion to their verified work (on top of the job fees), and a data pool shared by
positive contribution scores (the round's ``contribution_score`` job). What is not allocated
stays in the task budget and returns to the creator at ``close_task``.

**Provenance**: the model's shares (basis points summing to 10,000) are proportional to each data
provider's positive total score over all rounds
(:func:`~deai.protocol.incentives.royalties.provenance_shares`); if no contributor scored
positively, the shares are equal among the contributors (a registered model needs a share).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from deai.protocol.incentives.errors import BadScores
from deai.protocol.incentives.royalties import provenance_shares
from deai.protocol.incentives.split import Allocation, SplitRule, allocate, apportion

__all__ = ["model_shares", "round_allocation"]


def round_allocation(
    pool: int,
    reimburse: Mapping[str, int],
    rule: SplitRule,
    scores: Mapping[str, float],
    work: Mapping[str, int],
) -> tuple[dict[str, int], Allocation]:
    """({address: amount}, the split of what is left after reimbursement); total <= ``pool``."""
    out: dict[str, int] = {}
    left = pool
    for address, amount in sorted(reimburse.items()):
        paid = min(amount, left)
        if paid > 0:
            out[address] = out.get(address, 0) + paid
            left -= paid
    alloc = allocate(left, rule, scores, work)
    for address, amount in alloc.amounts.items():
        out[address] = out.get(address, 0) + amount
    return out, alloc


def model_shares(scores: Mapping[str, float], contributors: Sequence[str]) -> dict[str, int]:
    try:
        return provenance_shares(scores)
    except BadScores:
        people = sorted(set(contributors))
        if not people:
            raise
        return apportion(10_000, dict.fromkeys(people, 1.0))
