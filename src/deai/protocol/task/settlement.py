"""Settlement of a round and provenance of the final model, by the incentives layer's rules.

**Per round** (one ``post_payout_root`` per round, whatever the number of providers): the round's
pool is ``budget // rounds`` less the fees the round's verified jobs paid. Those fees never touch
the coordinator's balance: the ledger escrows each task job's fees from the task's budget and
refunds what was not paid back to it (a task without the budget for its jobs cannot run them).
The pool is split by the task's :class:`~deai.protocol.incentives.split.SplitRule`
(:func:`~deai.protocol.incentives.split.allocate`): a compute pool shared by the accepted
executors in proportion to their verified work (on top of the job fees), and a data pool shared by
positive contribution scores (the round's ``contribution_score`` job). What is not allocated
stays in the task budget and returns to the creator at ``close_task``.

The coordinator settles a round with :func:`settle_round` (allocation, then the round's checkpoint
and payout root by :func:`post_round`); after the
last round :func:`register_model` registers the model (its id bound to the coordinator by the
ledger) and :func:`close_out` closes the task. Each checks the ledger before writing, so a
step re-run after a crash never posts twice.

**Provenance**: the model's shares (basis points summing to 10,000) are proportional to each data
provider's positive total score over all rounds
(:func:`~deai.protocol.incentives.royalties.provenance_shares`); if no contributor scored
positively, the shares are equal among the contributors (a registered model needs a share).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from deai.core.accounts import Account
from deai.core.blobs import BlobStore
from deai.core.encoding import canonical
from deai.ledger.base import Ledger
from deai.ledger.merkle import payout_tree
from deai.ledger.txs import ClaimPayout, CloseTask, PostCheckpoint, PostPayoutRoot
from deai.protocol.incentives.errors import BadScores
from deai.protocol.incentives.royalties import Provenance, provenance_shares
from deai.protocol.incentives.settlement import verified_work
from deai.protocol.incentives.split import Allocation, SplitRule, allocate, apportion

__all__ = [
    "HOST_BPS",
    "close_out",
    "model_shares",
    "post_round",
    "register_model",
    "round_allocation",
    "settle_round",
]

HOST_BPS = 3_000  # hosts' part of each inference fee of the registered model; the rest is royalties


def round_allocation(
    pool: int,
    fees: int,
    rule: SplitRule,
    scores: Mapping[str, float],
    work: Mapping[str, int],
) -> tuple[dict[str, int], Allocation]:
    """({address: amount}, the split of ``pool`` less the ``fees`` the round's jobs already took
    from the task's budget); the total is at most ``pool - fees`` (nothing when fees exceed it)."""
    alloc = allocate(max(0, pool - fees), rule, scores, work)
    return dict(alloc.amounts), alloc


def model_shares(scores: Mapping[str, float], contributors: Sequence[str]) -> dict[str, int]:
    try:
        return provenance_shares(scores)
    except BadScores:
        people = sorted(set(contributors))
        if not people:
            raise
        return apportion(10_000, dict.fromkeys(people, 1.0))


def post_round(
    ledger: Ledger, account: Account, task: str, round: int, checkpoint: str, amounts: Mapping[str, int]
) -> None:
    """Post the round's checkpoint (a blob digest) and, if anyone is paid, its payout root."""
    if ledger.checkpoint(task, round) is None:
        ledger.send(account, PostCheckpoint(task=task, round=round, checkpoint="0x" + checkpoint))
    if amounts and ledger.payout(task, round) is None:
        tree = payout_tree(dict(amounts))
        ledger.send(account, PostPayoutRoot(task=task, epoch=round, root=tree.root, total=tree.total))


def settle_round(
    ledger: Ledger,
    account: Account,
    task: str,
    round: int,
    checkpoint: str,
    *,
    round_pool: int,
    rule: SplitRule,
    scores: Mapping[str, float],
    jobs: Sequence[tuple[str, int]],
) -> tuple[dict[str, int], Allocation]:
    """Allocate and post round ``round`` of ``task``: ``jobs`` are the round's accepted verified
    jobs with the fees each paid (already out of the task's budget), ``scores`` the round's
    contribution scores; the pool is ``round_pool`` capped by what the budget still holds."""
    work, _ = verified_work(ledger, [job for job, _ in jobs])
    fees = sum(fee for _, fee in jobs)
    record = ledger.task(task)
    if record is None:
        raise BadScores(f"task {task} is not on the ledger")
    amounts, alloc = round_allocation(min(round_pool, record.budget + fees), fees, rule, scores, work)
    post_round(ledger, account, task, round, checkpoint, amounts)
    return amounts, alloc


def register_model(
    ledger: Ledger,
    store: BlobStore,
    account: Account,
    task: str,
    checkpoint: str,
    scores: Mapping[str, float],
    contributors: Sequence[str],
    scoring: str,
    rounds: int,
) -> str:
    """Register the final checkpoint (a blob digest) as a model with its provenance document (which
    names the checkpoint); returns the model id, which the ledger derives from the registering
    coordinator, the task and the document."""
    prov = Provenance(
        account.address, "0x" + checkpoint, task, model_shares(scores, contributors), scoring, rounds
    )
    store.put(canonical(prov.to_json()), expected=prov.document.removeprefix("0x"))
    if ledger.model(prov.model) is None:
        prov.register(ledger, account, host_bps=HOST_BPS)
    return prov.model


def close_out(ledger: Ledger, account: Account, task: str, payouts: Mapping[str, Mapping[str, int]]) -> None:
    """Claim whatever the coordinator itself was allotted in a posted round, then close the task
    (what is left of the budget goes back to the creator)."""
    me = account.address
    for epoch, amounts in payouts.items():
        if me in amounts and not ledger.claimed(task, int(epoch), me):
            proof = tuple(payout_tree(dict(amounts)).proof(me))
            ledger.send(account, ClaimPayout(task=task, epoch=int(epoch), amount=amounts[me], proof=proof))
    info = ledger.task(task)
    if info is not None and info.status == "open":
        ledger.send(account, CloseTask(task=task))
