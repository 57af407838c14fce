"""Money chores of every role: hold a role stake (idempotent), claim a finished task's payouts.

:func:`check_funds` is what a daemon (``deai node``) asks before it starts: can every account pay
for the role stake it needs? An account that cannot is :class:`Unfunded`, one line naming the
account, what it has and needs, and how to fund it, instead of a daemon retrying forever.
"""

from __future__ import annotations

from collections.abc import Iterable

from deai.core.accounts import Account
from deai.core.errors import DeaiError
from deai.ledger.txs import ClaimPayout, Stake
from deai.node.participant.client import HubClient

__all__ = ["Unfunded", "check_funds", "claim_payouts", "ensure_stake"]


MAX_ADDRESSES = 1024  # per task.payouts request


class Unfunded(DeaiError):
    """An account's balance cannot pay for the role stake it needs."""


def check_funds(client: HubClient, accounts: Iterable[Account], roles: Iterable[str]) -> None:
    """Raise :class:`Unfunded` for the first account whose balance cannot top its stake in every
    role of ``roles`` up to the network's minimum (what :func:`ensure_stake` will stake)."""
    minimum = client.info()["config"]["min_stake"]
    for a in accounts:
        need = sum(max(0, minimum[r] - client.query("stake", address=a.address, role=r)) for r in set(roles))
        have = client.query("balance", address=a.address)
        if need > have:
            raise Unfunded(
                f"account {a.address} has a balance of {have:,} but needs {need:,} to stake as"
                f" {', '.join(sorted(set(roles)))}: fund it (`deai account fund {a.address} --amount"
                f" {need - have} --minter MINTER --hub URL` on a devnet, or a transfer from a funded account)"
            )


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
    names, payouts = sorted(by_address), {}
    for i in range(0, len(names), MAX_ADDRESSES):  # the hub answers at most 1,024 addresses a call
        body = {"task": task, "addresses": names[i : i + MAX_ADDRESSES]}
        payouts.update(client.call("task.payouts", body)["payouts"])
    items = list(extra)
    for address, claims in sorted(payouts.items()):
        for p in claims:
            tx = ClaimPayout(task=task, epoch=p["epoch"], amount=p["amount"], proof=tuple(p["proof"]))
            items.append((by_address[address], tx))
    return client.submit(items, check=False) if items else []
