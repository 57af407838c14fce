"""The ledger interface that protocol code programs against, whatever the backend.

A :class:`Ledger` takes signed transactions (:meth:`Ledger.submit`) and answers queries. A refused
transaction raises the :class:`~deai.ledger.errors.LedgerError` that names the reason and changes
nothing; an applied one returns a :class:`Receipt` with its events. Protocol code follows the
ledger through :meth:`Ledger.events` with a cursor.

**Clock.** The ledger has a logical clock in milliseconds, assigned by the ledger when it appends a
transaction (like a block timestamp), never decreasing, and recorded in the log so replay sees the
same time. Deadlines (commit/reveal windows, unbonding) are in this clock. Submitters cannot set
it; tests and simulations drive it by giving the backend a ``clock`` (e.g. :class:`ManualClock`).
``height`` counts applied transactions.

Backends: :class:`~deai.ledger.memory.MemoryLedger` (in memory, for simulations),
:class:`~deai.ledger.sqlite.SqliteLedger` (embedded, durable, the default). An EVM backend
implements the same abstract methods.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from deai.core.accounts import Account
from deai.ledger.config import NetworkConfig
from deai.ledger.errors import LedgerError
from deai.ledger.records import (
    JobRecord,
    MemberRecord,
    ModelRecord,
    PayoutRecord,
    TaskRecord,
    UnbondingRecord,
)
from deai.ledger.rules.base import Event
from deai.ledger.tx import SignedTx, Tx

__all__ = ["Head", "Ledger", "ManualClock", "Receipt", "TxRecord", "VerifyReport", "wall_clock_ms"]


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class ManualClock:
    """A clock that moves only when told: ``clock.advance(ms)``; pass it as a backend's ``clock``."""

    def __init__(self, start_ms: int = 0) -> None:
        self.now = start_ms

    def __call__(self) -> int:
        return self.now

    def advance(self, ms: int) -> int:
        if ms < 0:
            raise ValueError("a clock does not go back")
        self.now += ms
        return self.now


@dataclass(frozen=True)
class Head:
    """The tip of the log: ``height`` entries, the last one's ``hash`` (the genesis hash when
    empty), and the ledger clock ``time`` of the last entry."""

    height: int
    hash: str
    time: int


@dataclass(frozen=True)
class Receipt:
    """An applied transaction: its log position and entry hash, id, and the events it emitted."""

    height: int
    hash: str
    tx_id: str
    kind: str
    sender: str
    nonce: int
    time: int
    events: tuple[Event, ...]

    def event(self, kind: str) -> Event:
        """The first event of ``kind`` (raises KeyError if none)."""
        for e in self.events:
            if e.kind == kind:
                return e
        raise KeyError(f"no {kind!r} event in this receipt")


@dataclass(frozen=True)
class TxRecord:
    """One logged transaction, for histories."""

    height: int
    time: int
    kind: str
    sender: str
    nonce: int
    body: dict[str, Any]
    hash: str


@dataclass(frozen=True)
class VerifyReport:
    """What :meth:`Ledger.verify` found. ``ok`` is False with ``problem`` naming the first fault."""

    ok: bool
    entries: int
    head: str
    state_root: str | None
    stored_root: str | None
    problem: str | None = None


class Ledger(ABC):
    """The interface. Amounts are ints of the smallest unit; ids and hashes are 0x-hex strings.
    Object-valued queries return typed records (:mod:`deai.ledger.records`)."""

    config: NetworkConfig

    # -- writing ------------------------------------------------------------------------------------

    @abstractmethod
    def submit(self, tx: SignedTx | bytes) -> Receipt:
        """Apply one signed transaction (object or wire bytes) durably, or raise a LedgerError."""

    @abstractmethod
    def submit_many(self, txs: Iterable[SignedTx | bytes]) -> list[Receipt | LedgerError]:
        """Apply each transaction in order, committing the applied ones together (one durable
        write). Each item's result is its receipt or the error that refused it."""

    def sign(self, account: Account, tx: Tx, *, nonce: int | None = None) -> SignedTx:
        """Sign ``tx`` for this network with the sender's next nonce (or ``nonce``)."""
        nonce = self.nonce(account.address) if nonce is None else nonce
        return SignedTx.create(account, tx, nonce=nonce, network=self.config.network)

    def send(self, account: Account, tx: Tx) -> Receipt:
        """Sign with the next nonce and submit: the one-liner for protocol code and tests."""
        return self.submit(self.sign(account, tx))

    # -- accounts -----------------------------------------------------------------------------------

    @abstractmethod
    def balance(self, address: str) -> int: ...

    @abstractmethod
    def nonce(self, address: str) -> int:
        """The next nonce the account must use."""

    @abstractmethod
    def stake(self, address: str, role: str) -> int: ...

    @abstractmethod
    def unbonding(self, address: str, role: str) -> UnbondingRecord | None:
        """The stake on its way out (amount, release time) or None."""

    @abstractmethod
    def locked(self, address: str, role: str) -> int:
        """How many unresolved jobs the stake backs (0: free to unstake)."""

    @abstractmethod
    def reputation(self, address: str, role: str) -> int: ...

    # -- tasks, jobs, models ------------------------------------------------------------------------

    @abstractmethod
    def task(self, task_id: str) -> TaskRecord | None: ...

    @abstractmethod
    def member(self, task_id: str, address: str) -> MemberRecord | None: ...

    @abstractmethod
    def checkpoint(self, task_id: str, round: int) -> str | None: ...

    @abstractmethod
    def payout(self, task_id: str, epoch: int) -> PayoutRecord | None: ...

    @abstractmethod
    def claimed(self, task_id: str, epoch: int, address: str) -> int: ...

    @abstractmethod
    def job(self, job_id: str) -> JobRecord | None:
        """The job record: creator, executors, deadlines, counts, status, accepted, faulted, ..."""

    @abstractmethod
    def commitment(self, job_id: str, executor: str) -> str | None: ...

    @abstractmethod
    def revealed(self, job_id: str, executor: str) -> str | None: ...

    @abstractmethod
    def eligible_executors(self, role: str, fee: int, exclude: str = "") -> list[tuple[str, int]]:
        """(address, weight) pairs a job of ``role`` paying ``fee`` would draw from."""

    @abstractmethod
    def model(self, model_id: str) -> ModelRecord | None: ...

    @abstractmethod
    def royalty_owed(self, model_id: str, address: str, shares: int) -> int: ...

    # -- the log and the whole state ----------------------------------------------------------------

    @abstractmethod
    def head(self) -> Head: ...

    @abstractmethod
    def state_root(self) -> str:
        """0x-hex SHA-256 of the canonical state (O(state), computed on demand)."""

    @abstractmethod
    def supply(self) -> dict[str, int]:
        """Where the supply sits: balances, stakes, unbonding, escrows, unclaimed, burned, minted."""

    @abstractmethod
    def check_invariants(self) -> dict[str, int]:
        """Raise InvariantViolation unless conservation and non-negativity hold."""

    @abstractmethod
    def events(self, since: int = 0, limit: int | None = None) -> list[Event]:
        """Events with ``seq >= since`` in order; continue from ``last.seq + 1``."""

    @abstractmethod
    def history(self, address: str, limit: int = 50) -> Sequence[TxRecord]:
        """The account's own transactions, newest first."""

    @abstractmethod
    def verify(self) -> VerifyReport:
        """Replay the whole log from genesis: hash links, signatures, events, final state root."""

    def refresh(self) -> None:  # noqa: B027 - only for backends that cache what they read
        """Read the latest state at the next query (a backend that caches reads of a shared chain
        forgets them; a local backend always reads its own latest state)."""

    def close(self) -> None:  # noqa: B027 - optional for backends without resources
        """Release resources (files, connections)."""

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
