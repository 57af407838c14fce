"""Make sure each hosted account holds a role stake (idempotent: tops up only what is missing)."""

from __future__ import annotations

from collections.abc import Iterable

from deai.core.accounts import Account
from deai.ledger.txs import Stake
from deai.node.client import HubClient

__all__ = ["ensure_stake"]


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
