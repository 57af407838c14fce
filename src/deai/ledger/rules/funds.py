"""Rules for funds: mint, transfer, stake, unstake, withdraw, slash, reputation."""

from __future__ import annotations

from deai.ledger.config import MAX_AMOUNT
from deai.ledger.errors import (
    InsufficientStake,
    NothingToWithdraw,
    StakeBelowMinimum,
    StakeLocked,
    StillUnbonding,
    SupplyCapExceeded,
)
from deai.ledger.records import UnbondingRecord
from deai.ledger.rules.base import Call, credit, debit, handles
from deai.ledger.state import key
from deai.ledger.txs import Mint, Slash, Stake, Transfer, Unstake, UpdateReputation, Withdraw

__all__ = ["REPUTATION_BOUND"]

REPUTATION_BOUND = 1_000_000


@handles(Mint)
def mint(c: Call, tx: Mint) -> None:
    c.require_sender(c.config.minter, "mint")
    minted = c.state.meta("minted") + tx.amount
    if minted > MAX_AMOUNT:
        raise SupplyCapExceeded(f"minting {tx.amount} would bring the supply to {minted} > 2**53 - 1")
    c.state.set_meta("minted", minted)
    credit(c.state, tx.to, tx.amount)
    c.emit("minted", to=tx.to, amount=tx.amount)


@handles(Transfer)
def transfer(c: Call, tx: Transfer) -> None:
    debit(c.state, c.sender, tx.amount, "transfer")
    credit(c.state, tx.to, tx.amount)
    c.emit("transferred", sender=c.sender, to=tx.to, amount=tx.amount)


@handles(Stake)
def stake(c: Call, tx: Stake) -> None:
    k = key(c.sender, tx.role)
    new = c.state.num("stakes", k) + tx.amount
    minimum = c.config.min_stake[tx.role]
    if new < minimum:
        raise StakeBelowMinimum(f"a {tx.role} stake must be at least {minimum}; this one would be {new}")
    debit(c.state, c.sender, tx.amount, "stake")
    c.state.put("stakes", k, new)
    c.emit("staked", account=c.sender, role=tx.role, amount=tx.amount, stake=new)


@handles(Unstake)
def unstake(c: Call, tx: Unstake) -> None:
    k = key(c.sender, tx.role)
    have = c.state.num("stakes", k)
    if tx.amount > have:
        raise InsufficientStake(f"{c.sender} has {have} staked as {tx.role}, cannot unstake {tx.amount}")
    locks = c.state.num("locks", k)
    if locks:
        raise StakeLocked(f"the {tx.role} stake of {c.sender} backs {locks} unresolved job(s)")
    tasks = c.state.num("memberships", k)
    if tasks:
        raise StakeLocked(
            f"{c.sender} is a {tx.role} member of {tasks} task(s); leave them (once closed) to unstake"
        )
    rest, minimum = have - tx.amount, c.config.min_stake[tx.role]
    if 0 < rest < minimum:
        raise StakeBelowMinimum(
            f"unstaking {tx.amount} would leave {rest}, below the {tx.role} minimum {minimum}"
            " (leave 0 or at least the minimum)"
        )
    c.state.put("stakes", k, rest)
    old = c.state.unbonding(c.sender, tx.role)
    release = c.now + c.config.unbonding_delay_ms
    amount = (old.amount if old is not None else 0) + tx.amount
    c.state.put_unbonding(c.sender, tx.role, UnbondingRecord(amount=amount, release=release))
    c.emit("unstaked", account=c.sender, role=tx.role, amount=tx.amount, release=release)


@handles(Withdraw)
def withdraw(c: Call, tx: Withdraw) -> None:
    entry = c.state.unbonding(c.sender, tx.role)
    if entry is None:
        raise NothingToWithdraw(f"{c.sender} has nothing unbonding as {tx.role}")
    if c.now < entry.release:
        raise StillUnbonding(f"unbonding until {entry.release}, the ledger clock is at {c.now}")
    c.state.put_unbonding(c.sender, tx.role, None)
    credit(c.state, c.sender, entry.amount)
    c.emit("withdrawn", account=c.sender, role=tx.role, amount=entry.amount)


@handles(Slash)
def slash(c: Call, tx: Slash) -> None:
    c.require_sender(c.config.slasher, "slash")
    k = key(tx.account, tx.role)
    have = c.state.num("stakes", k)
    if tx.amount > have:
        raise InsufficientStake(f"{tx.account} has {have} staked as {tx.role}, cannot slash {tx.amount}")
    c.state.put("stakes", k, have - tx.amount)
    c.state.set_meta("burned", c.state.meta("burned") + tx.amount)
    c.emit("slashed", account=tx.account, role=tx.role, amount=tx.amount, reason=tx.reason, job=None)


@handles(UpdateReputation)
def update_reputation(c: Call, tx: UpdateReputation) -> None:
    c.require_sender(c.config.reputation_oracle, "update reputation")
    score = add_reputation(c, tx.account, tx.role, tx.delta)
    c.emit("reputation", account=tx.account, role=tx.role, delta=tx.delta, score=score, reason=tx.reason)


def add_reputation(c: Call, account: str, role: str, delta: int) -> int:
    """Change a score, clamped to +-REPUTATION_BOUND; returns the new score."""
    k = key(account, role)
    score = max(-REPUTATION_BOUND, min(REPUTATION_BOUND, c.state.num("reputation", k) + delta))
    c.state.put("reputation", k, score)
    return score
