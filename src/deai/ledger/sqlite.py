"""The embedded default backend: a SQLite file (WAL) holding the log, the events and the state.

Tables:

- ``log(seq, prev_hash, time, sender, kind, nonce, tx, signature, events_hash, hash)``: the
  hash-chained log (see :mod:`deai.ledger.log`), indexed by sender for histories;
- ``events(seq, height, kind, data)``: the event stream (``data`` is JSON);
- ``state(tbl, key, value)``: the current state, one row per entry of each state table (``value``
  is JSON), with views ``balances``, ``stakes``, ``reputation``, ``tasks``, ``jobs``, ``models``
  for SQL queries;
- ``meta``: the network config (the genesis).

A batch of transactions (``submit_many``; ``submit`` is a batch of one) is written in one SQLite
transaction: log rows, events and every state row the batch touched. A crash at any point leaves
either the whole batch or none of it; on open the state is loaded from the tables and checked to
sit at the log's head. ``synchronous=FULL`` (default) makes a returned receipt survive power loss;
``NORMAL`` only process crashes (faster). One process writes a ledger file at a time: a writer that
finds the log moved under it refuses the batch.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from deai.core.encoding import canonical
from deai.ledger.base import Head, TxRecord
from deai.ledger.config import NetworkConfig
from deai.ledger.errors import LedgerCorrupted, LedgerError
from deai.ledger.local import LocalLedger
from deai.ledger.log import LogEntry
from deai.ledger.rules.base import Event
from deai.ledger.state import State

__all__ = ["SqliteLedger"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS log (
    seq INTEGER PRIMARY KEY, prev_hash TEXT NOT NULL, time INTEGER NOT NULL, sender TEXT NOT NULL,
    kind TEXT NOT NULL, nonce INTEGER NOT NULL, tx BLOB NOT NULL, signature BLOB NOT NULL,
    events_hash TEXT NOT NULL, hash TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS log_sender ON log (sender, seq);
CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, height INTEGER NOT NULL, kind TEXT NOT NULL,
    data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS state (tbl TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (tbl, key)) WITHOUT ROWID;
CREATE VIEW IF NOT EXISTS balances AS SELECT key AS address, CAST(value AS INTEGER) AS amount
    FROM state WHERE tbl = 'balances';
CREATE VIEW IF NOT EXISTS stakes AS SELECT substr(key, 1, 42) AS address, substr(key, 44) AS role,
    CAST(value AS INTEGER) AS amount FROM state WHERE tbl = 'stakes';
CREATE VIEW IF NOT EXISTS reputation AS SELECT substr(key, 1, 42) AS address, substr(key, 44) AS role,
    CAST(value AS INTEGER) AS score FROM state WHERE tbl = 'reputation';
CREATE VIEW IF NOT EXISTS tasks AS SELECT key AS task, value AS record FROM state WHERE tbl = 'tasks';
CREATE VIEW IF NOT EXISTS jobs AS SELECT key AS job, value AS record FROM state WHERE tbl = 'jobs';
CREATE VIEW IF NOT EXISTS models AS SELECT key AS model, value AS record FROM state WHERE tbl = 'models';
"""

_dumps = json.JSONEncoder(separators=(",", ":"), sort_keys=True).encode


class SqliteLedger(LocalLedger):
    """``SqliteLedger(path, config)`` creates or opens a ledger file; ``config`` may be omitted when
    opening an existing one (it must match when given)."""

    def __init__(
        self,
        path: str | Path,
        config: NetworkConfig | None = None,
        *,
        clock: Callable[[], int] | None = None,
        synchronous: str = "FULL",
    ) -> None:
        if synchronous not in ("FULL", "NORMAL", "EXTRA"):
            raise LedgerError("synchronous must be FULL, EXTRA or NORMAL")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db = db
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={synchronous}")
            db.execute("PRAGMA busy_timeout=5000")
            db.executescript(_SCHEMA)
            config = self._genesis(config)
            with self._read_snapshot():
                state = State.from_rows(config, self._state_rows())
                head = self._read_head(config)
                events = db.execute("SELECT COALESCE(MAX(seq) + 1, 0) FROM events").fetchone()[0]
            if state.meta("height") != head.height:
                raise LedgerCorrupted(
                    f"state tables are at height {state.meta('height')}, the log at {head.height}"
                )
        except BaseException:
            db.close()
            raise
        super().__init__(config, state, head, event_count=events, clock=clock)

    # -- opening --------------------------------------------------------------------------------------

    def _genesis(self, config: NetworkConfig | None) -> NetworkConfig:
        row = self._db.execute("SELECT v FROM meta WHERE k = 'config'").fetchone()
        if row is None:
            if config is None:
                raise LedgerError(f"{self.path} holds no ledger; creating one needs a network config")
            self._db.execute("INSERT INTO meta VALUES ('config', ?)", (canonical(config.to_dict()).decode(),))
            return config
        stored = NetworkConfig.from_dict(json.loads(row[0]))
        if config is not None and config != stored:
            raise LedgerError(f"{self.path} holds a ledger of another network config")
        return stored

    @contextmanager
    def _read_snapshot(self) -> Iterator[None]:
        """One read transaction: every SELECT inside sees the same committed state of the file."""
        self._db.execute("BEGIN")
        try:
            yield
        finally:
            self._db.execute("COMMIT")

    def _snapshot(self) -> AbstractContextManager:
        return self._read_snapshot()

    def _stored_head(self) -> Head:
        return self._read_head(self.config)

    def _state_rows(self) -> Iterator[tuple[str, str, object]]:
        for tbl, k, value in self._db.execute("SELECT tbl, key, value FROM state"):
            yield tbl, k, json.loads(value)

    def _read_head(self, config: NetworkConfig) -> Head:
        row = self._db.execute("SELECT seq, hash, time FROM log ORDER BY seq DESC LIMIT 1").fetchone()
        return Head(0, config.genesis_hash, 0) if row is None else Head(row[0] + 1, row[1], row[2])

    # -- persistence ----------------------------------------------------------------------------------

    def _persist(self, entries: list[LogEntry], events: list[Event], dirty: set[tuple[str, str]]) -> None:
        db, tables = self._db, self._state.tables
        rows = []
        for e in entries:
            data = json.loads(e.tx)
            rows.append(
                (
                    e.seq,
                    e.prev_hash,
                    e.time,
                    data["sender"],
                    data["kind"],
                    data["nonce"],
                    e.tx,
                    e.signature,
                    e.events_hash,
                    e.hash,
                )
            )
        upserts, deletes = [], []
        for tbl, k in dirty:
            value = tables[tbl].get(k)
            if value is None:
                deletes.append((tbl, k))
            else:
                upserts.append((tbl, k, _dumps(value)))
        db.execute("BEGIN IMMEDIATE")
        try:
            last = db.execute("SELECT COALESCE(MAX(seq), -1) FROM log").fetchone()[0]
            if last != entries[0].seq - 1:
                raise LedgerError("the ledger file was written by another process; reopen it")
            db.executemany("INSERT INTO log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
            db.executemany(
                "INSERT INTO events VALUES (?, ?, ?, ?)",
                [(e.seq, e.height, e.kind, _dumps(e.data)) for e in events],
            )
            db.executemany("INSERT OR REPLACE INTO state VALUES (?, ?, ?)", upserts)
            db.executemany("DELETE FROM state WHERE tbl = ? AND key = ?", deletes)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _log_entries(self) -> Iterator[LogEntry]:
        cursor = self._db.cursor()
        cursor.execute("SELECT seq, prev_hash, time, tx, signature, events_hash, hash FROM log ORDER BY seq")
        for seq, prev, time, tx, sig, ev, h in cursor:
            yield LogEntry(seq, prev, time, bytes(tx), bytes(sig), ev, h)

    def _stored_events(self) -> Iterator[Event]:
        cursor = self._db.cursor()
        cursor.execute("SELECT seq, height, kind, data FROM events ORDER BY seq")
        for seq, height, kind, data in cursor:
            yield Event(kind, json.loads(data), height, seq)

    def _stored_state(self) -> State:
        return State.from_rows(self.config, self._state_rows())

    # -- queries --------------------------------------------------------------------------------------

    def events(self, since: int = 0, limit: int | None = None) -> list[Event]:
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, height, kind, data FROM events WHERE seq >= ? ORDER BY seq LIMIT ?",
                (since, -1 if limit is None else limit),
            )
            return [Event(kind, json.loads(data), height, seq) for seq, height, kind, data in rows]

    def history(self, address: str, limit: int = 50) -> Sequence[TxRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, time, kind, sender, nonce, tx, hash FROM log WHERE sender = ?"
                " ORDER BY seq DESC LIMIT ?",
                (address, limit),
            ).fetchall()
        return [TxRecord(s, t, k, a, n, json.loads(tx)["body"], h) for s, t, k, a, n, tx, h in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
