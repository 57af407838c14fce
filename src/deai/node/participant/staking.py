"""Money chores of every role: hold a role stake (idempotent), claim a finished task's payouts."""

from __future__ import annotations

from collections.abc import Iterable

from deai.core.accounts import Account
from deai.ledger.txs import ClaimPayout, Stake
from deai.node.participant.client import HubClient

__all__ = ["claim_payouts", "ensure_stake"]


def ensure_stake(client: HubClient, accounts: Iterable[Account], role: str, amount: int | None) -> None:
    """Stake up to ``amount`` (default: the network's minimum for ``role``) for every account."""
    config = client.info()["config"]
    want = max(int(amount or 0), config["min_stake"][role])
    items = []
    for a in accounts:
        have = client.query("stake", address=a.address, role=role)
        if have < want:
            items.append((a, Stake(role=role, amount=want - have)))
    if items:
        client.submit(items)


def claim_payouts(client: HubClient, task: str, accounts: Iterable[Account], *, extra=()) -> list[dict]:
    """Claim every payout of ``task`` owed to ``accounts`` (proofs from the hub, checked by the
    ledger), plus the ``(account, tx)`` pairs in ``extra``, in one batch. A claim already made is
    refused by the ledger, which is fine: claiming is idempotent."""
    by_address = {a.address: a for a in accounts}
    payouts = client.call("task.payouts", {"task": task, "addresses": sorted(by_address)})["payouts"]
    items = list(extra)
    for address, claims in sorted(payouts.items()):
        for p in claims:
            tx = ClaimPayout(task=task, epoch=p["epoch"], amount=p["amount"], proof=tuple(p["proof"]))
            items.append((by_address[address], tx))
    return client.submit(items, check=False) if items else []
