"""An in-memory ledger: the same state machine and log, nothing on disk. For fast simulations
and as the reference backend of the conformance suite."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from deai.ledger.base import Head, TxRecord
from deai.ledger.config import NetworkConfig
from deai.ledger.local import LocalLedger
from deai.ledger.log import LogEntry
from deai.ledger.rules.base import Event
from deai.ledger.state import State

__all__ = ["MemoryLedger"]


class MemoryLedger(LocalLedger):
    """``MemoryLedger(config, clock=None)``: a fresh ledger at genesis, held in memory."""

    def __init__(self, config: NetworkConfig, *, clock: Callable[[], int] | None = None) -> None:
        super().__init__(config, State(config), Head(0, config.genesis_hash, 0), event_count=0, clock=clock)
        self._entries: list[LogEntry] = []
        self._event_list: list[Event] = []
        self._by_sender: dict[str, list[int]] = {}

    def _persist(
        self, entries: list[LogEntry], events: list[Event], before: dict[tuple[str, str], Any]
    ) -> None:
        for entry in entries:
            sender = json.loads(entry.tx)["sender"]
            self._by_sender.setdefault(sender, []).append(entry.seq)
        self._entries.extend(entries)
        self._event_list.extend(events)

    def _log_entries(self, since: int = 0, limit: int | None = None) -> Iterator[LogEntry]:
        return iter(self._entries[since : None if limit is None else since + limit])

    def _stored_events(self) -> Iterator[Event]:
        return iter(list(self._event_list))

    def events(self, since: int = 0, limit: int | None = None) -> list[Event]:
        with self._lock:
            stop = None if limit is None else since + limit
            return self._event_list[since:stop]

    def history(self, address: str, limit: int = 50) -> Sequence[TxRecord]:
        with self._lock:
            seqs = self._by_sender.get(address, [])[::-1][:limit]
            out = []
            for seq in seqs:
                entry = self._entries[seq]
                data = json.loads(entry.tx)
                out.append(
                    TxRecord(
                        seq, entry.time, data["kind"], data["sender"], data["nonce"], data["body"], entry.hash
                    )
                )
            return out

    def tamper(self, seq: int, **changes) -> None:
        """Overwrite fields of a log entry in place -- for tests of ``verify`` only."""
        from dataclasses import replace

        self._entries[seq] = replace(self._entries[seq], **changes)
