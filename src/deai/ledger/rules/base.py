"""What every rule module shares: the call context, events, the handler registry, fund moves."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from deai.ledger.config import MAX_AMOUNT, NetworkConfig
from deai.ledger.errors import InsufficientBalance, InvariantViolation, NotAuthorized
from deai.ledger.state import State
from deai.ledger.tx import Tx

__all__ = ["HANDLERS", "Call", "Context", "Event", "credit", "debit", "handles"]


@dataclass(frozen=True)
class Context:
    """Where a transaction is applied: log position ``height`` (0 for the first entry), ledger clock
    ``time`` (ms, never decreasing) and ``head`` (0x-hex hash of the previous log entry, or the
    genesis hash). The backend fixes all three when it appends the entry; replay reads them back."""

    height: int
    time: int
    head: str


@dataclass(frozen=True)
class Event:
    """Something a transaction did, for protocol code to follow. ``seq`` (the event's position in
    the ledger's event stream, the cursor of ``Ledger.events``) and ``height`` are set by the
    ledger; ``-1`` until then."""

    kind: str
    data: dict[str, Any]
    height: int = -1
    seq: int = -1

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "data": self.data}


@dataclass
class Call:
    """One transaction being applied: the state, its sender and context, and the events it emits."""

    state: State
    sender: str
    ctx: Context
    events: list[Event] = field(default_factory=list)

    @property
    def config(self) -> NetworkConfig:
        return self.state.config

    @property
    def now(self) -> int:
        return self.ctx.time

    def emit(self, kind: str, **data: Any) -> None:
        self.events.append(Event(kind, data))

    def require_sender(self, allowed: str | None, what: str) -> None:
        """Refuse the call unless its sender is ``allowed`` (None: nobody may)."""
        if self.sender != allowed:
            raise NotAuthorized(f"only {allowed} may {what}; the sender is {self.sender}")


Handler = Callable[[Call, Any], None]
HANDLERS: dict[str, Handler] = {}


def handles(tx_type: type[Tx]) -> Callable[[Handler], Handler]:
    """Register the rule for one transaction type."""

    def deco(fn: Handler) -> Handler:
        HANDLERS[tx_type.kind] = fn
        return fn

    return deco


def debit(state: State, account: str, amount: int, what: str = "") -> None:
    """Take ``amount`` from ``account``'s free balance or raise InsufficientBalance."""
    have = state.num("balances", account)
    if have < amount:
        raise InsufficientBalance(
            f"{account} has a balance of {have}, needs {amount}" + (f" to {what}" if what else "")
        )
    state.put("balances", account, have - amount)


def credit(state: State, account: str, amount: int) -> None:
    if amount:
        value = state.num("balances", account) + amount
        if value > MAX_AMOUNT:
            raise InvariantViolation(f"balance of {account} would exceed the supply cap")
        state.put("balances", account, value)
