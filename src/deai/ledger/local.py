"""The shared engine of the local backends: an in-memory state, the state machine, the log.

:class:`LocalLedger` keeps the whole state in memory (queries are dict look-ups) and leaves
persistence to subclasses through four hooks: ``_persist`` (append a batch atomically),
``_log_entries``, ``_stored_events`` / ``_events`` and ``_history``.
"""

from __future__ import annotations

import copy
import threading
from abc import abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from deai.ledger.base import Head, Ledger, Receipt, TxRecord, VerifyReport, wall_clock_ms
from deai.ledger.config import NetworkConfig
from deai.ledger.errors import LedgerCorrupted, LedgerError
from deai.ledger.log import LogEntry, entry_hash, events_hash, replay
from deai.ledger.machine import apply
from deai.ledger.records import (
    JobRecord,
    MemberRecord,
    ModelRecord,
    PayoutRecord,
    TaskRecord,
    UnbondingRecord,
)
from deai.ledger.rules.base import Context, Event
from deai.ledger.rules.jobs import eligible_executors
from deai.ledger.rules.models import royalty_owed
from deai.ledger.state import State, key
from deai.ledger.tx import SignedTx, checked_signed_tx

__all__ = ["LocalLedger"]


class LocalLedger(Ledger):
    """State in memory, log and persistence in the subclass."""

    def __init__(
        self,
        config: NetworkConfig,
        state: State,
        head: Head,
        *,
        event_count: int,
        clock: Callable[[], int] | None = None,
    ) -> None:
        self.config = config
        self._state = state
        self._head = head
        self._event_count = event_count
        self._clock = clock or wall_clock_ms
        self._lock = threading.RLock()

    # -- persistence hooks ----------------------------------------------------------------------------

    @abstractmethod
    def _persist(
        self, entries: list[LogEntry], events: list[Event], before: dict[tuple[str, str], Any]
    ) -> None:
        """Make a batch durable, all or nothing (raise to refuse the whole batch). ``before`` maps
        each (table, key) the batch put to its value before the batch (None: absent)."""

    @abstractmethod
    def _log_entries(self, since: int = 0, limit: int | None = None) -> Iterator[LogEntry]:
        """Log entries with ``seq >= since`` in order, at most ``limit`` of them."""

    @abstractmethod
    def _stored_events(self) -> Iterator[Event]: ...

    def _stored_state(self) -> State:
        """The state as persisted (the SQLite backend reads it back from its tables)."""
        return self._state

    def _stored_head(self) -> Head:
        return self._head

    def _snapshot(self) -> AbstractContextManager:
        """A consistent read view of everything stored, for the length of a verify."""
        return nullcontext()

    # -- writing --------------------------------------------------------------------------------------

    def _prepare(self, item: SignedTx | bytes) -> SignedTx:
        stx = checked_signed_tx(item, self.config.max_tx_bytes)
        return stx

    def submit(self, tx: SignedTx | bytes) -> Receipt:
        result = self.submit_many([tx])[0]
        if isinstance(result, LedgerError):
            raise result
        return result

    def submit_many(self, txs: Iterable[SignedTx | bytes]) -> list[Receipt | LedgerError]:
        with self._lock:
            state = self._state
            start_mark, start_events = state.mark(), self._event_count
            results: list[Receipt | LedgerError] = []
            entries: list[LogEntry] = []
            batch_events: list[Event] = []
            head = self._head
            for item in txs:
                try:
                    stx = self._prepare(item)
                    now = max(self._clock(), head.time)
                    events = apply(state, stx, Context(head.height, now, head.hash))
                except LedgerError as exc:
                    results.append(exc)
                    continue
                ev_hash = events_hash(events)
                signed = stx.signing_bytes
                h = entry_hash(head.hash, head.height, now, signed, stx.signature, ev_hash)
                entries.append(LogEntry(head.height, head.hash, now, signed, stx.signature, ev_hash, h))
                numbered = []
                for e in events:
                    numbered.append(Event(e.kind, e.data, head.height, self._event_count))
                    self._event_count += 1
                batch_events.extend(numbered)
                results.append(
                    Receipt(head.height, h, stx.id, stx.kind, stx.sender, stx.nonce, now, tuple(numbered))
                )
                head = Head(head.height + 1, h, now)
            if entries:
                try:
                    self._persist(entries, batch_events, state.changes(start_mark))
                except BaseException:
                    state.rollback(start_mark)
                    self._event_count = start_events
                    raise
                self._head = head
            state.forget()
            return results

    # -- queries (records are frozen copies: nothing returned shares the live state) ---------------

    def _get(self, table: str, k: str, default: Any = None) -> Any:
        with self._lock:
            return copy.deepcopy(self._state.get(table, k, default))

    def balance(self, address: str) -> int:
        return self._get("balances", address, 0)

    def nonce(self, address: str) -> int:
        return self._get("nonces", address, 0)

    def stake(self, address: str, role: str) -> int:
        return self._get("stakes", key(address, role), 0)

    def unbonding(self, address: str, role: str) -> UnbondingRecord | None:
        with self._lock:
            return self._state.unbonding(address, role)

    def locked(self, address: str, role: str) -> int:
        return self._get("locks", key(address, role), 0)

    def reputation(self, address: str, role: str) -> int:
        return self._get("reputation", key(address, role), 0)

    def task(self, task_id: str) -> TaskRecord | None:
        with self._lock:
            return self._state.task(task_id)

    def member(self, task_id: str, address: str) -> MemberRecord | None:
        with self._lock:
            return self._state.member(task_id, address)

    def checkpoint(self, task_id: str, round: int) -> str | None:
        return self._get("checkpoints", key(task_id, round))

    def payout(self, task_id: str, epoch: int) -> PayoutRecord | None:
        with self._lock:
            return self._state.payout(task_id, epoch)

    def claimed(self, task_id: str, epoch: int, address: str) -> int:
        return self._get("claims", key(task_id, epoch, address), 0)

    def job(self, job_id: str) -> JobRecord | None:
        with self._lock:
            return self._state.job(job_id)

    def commitment(self, job_id: str, executor: str) -> str | None:
        return self._get("commits", key(job_id, executor))

    def revealed(self, job_id: str, executor: str) -> str | None:
        return self._get("reveals", key(job_id, executor))

    def eligible_executors(self, role: str, fee: int, exclude: str = "") -> list[tuple[str, int]]:
        with self._lock:
            return sorted(eligible_executors(self._state, role, fee, exclude))

    def model(self, model_id: str) -> ModelRecord | None:
        with self._lock:
            return self._state.model(model_id)

    def royalty_owed(self, model_id: str, address: str, shares: int) -> int:
        with self._lock:
            return royalty_owed(self._state, model_id, address, shares)

    def head(self) -> Head:
        return self._head

    def state_root(self) -> str:
        with self._lock:
            return self._state.root()

    def supply(self) -> dict[str, int]:
        with self._lock:
            return {**self._state.supply_breakdown(), "minted": self._state.meta("minted")}

    def check_invariants(self) -> dict[str, int]:
        with self._lock:
            return self._state.check_invariants()

    def state(self) -> State:
        """A copy of the whole state (for tools and tests; O(state))."""
        with self._lock:
            return self._state.copy()

    @abstractmethod
    def events(self, since: int = 0, limit: int | None = None) -> list[Event]: ...

    @abstractmethod
    def history(self, address: str, limit: int = 50) -> Sequence[TxRecord]: ...

    def log(self, since: int = 0, limit: int | None = None) -> Iterator[LogEntry]:
        """Log entries from ``since`` on (from genesis by default), at most ``limit`` of them: a
        range read (an index seek, not a walk from genesis). With a ``limit`` the entries are read
        at once under the lock; without one they stream (for auditors and the verify command)."""
        if limit is None:
            return self._log_entries(since)
        with self._lock:
            return iter(list(self._log_entries(since, limit)))

    def verify(self) -> VerifyReport:
        with self._lock, self._snapshot():
            stored_head, stored = self._stored_head(), self._stored_state()
            stored_root = stored.root()
            try:
                state, head, count = replay(self.config, self._log_entries(), self._stored_events())
            except LedgerCorrupted as exc:
                return VerifyReport(False, 0, stored_head.hash, None, stored_root, str(exc))
            root = state.root()
            problem = None
            if head != stored_head.hash or count != stored_head.height:
                problem = (
                    f"the log replays to {count} entries / {head}, the stored head is {stored_head.height}"
                )
            elif root != stored_root:
                problem = (
                    f"the stored state (root {stored_root}) differs from the replayed state (root {root})"
                )
            elif stored_head == self._head and stored_root != self._state.root():
                problem = "the in-memory state differs from the stored state"
            return VerifyReport(problem is None, count, head, root, stored_root, problem)
