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

**Tampering.** Opened with its ``operator`` account (the hub's), the ledger signs a
:class:`~deai.ledger.checkpoint.Checkpoint` of the head, the state and the events with every batch
(``meta`` row ``checkpoint``, same SQLite transaction; a copy in the file ``PATH.checkpoint``
beside it, rewritten at open, close and at most once a minute, outlives a wiped database) and
refuses to open a file that does not match them: an edited state or event row, a rewritten or
truncated log, a deleted checkpoint or one signed by another key raise :class:`LedgerCorrupted`
naming the fault (back up and restore both files together). The check walks the log's hash
chain and hashes the state and the events (~1.6 s per 100k entries on a busy 2-core machine, where
the full replay takes ~60 s); the full replay (:meth:`verify`) runs at open only when entries were
appended without the operator's key. Without an ``operator`` the same checks run against whoever
signed the stored checkpoints (a file without any opens as before); ``audit=True`` opens a damaged
file anyway, read-only, for ``verify``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from deai.core.accounts import Account
from deai.core.encoding import canonical
from deai.core.errors import DeaiError
from deai.ledger.base import Head, TxRecord, VerifyReport
from deai.ledger.checkpoint import EVENTS_GENESIS, Checkpoint, event_link, row_point, rows_total, state_digest
from deai.ledger.config import NetworkConfig
from deai.ledger.errors import LedgerCorrupted, LedgerError
from deai.ledger.local import LocalLedger
from deai.ledger.log import LogEntry, check_chain
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


def _state_total(state: State) -> int:
    return rows_total((t, k, _dumps(v)) for t, rows in state.tables.items() for k, v in rows.items())


def _blob(value: object) -> bytes:
    """A stored BLOB column (an edited file may hold text or a number there: refused, not crashed)."""
    if isinstance(value, bytes):
        return value
    raise LedgerCorrupted(f"a log column holds {type(value).__name__}, not bytes")


class SqliteLedger(LocalLedger):
    """``SqliteLedger(path, config, operator=account)`` creates or opens a ledger file; ``config``
    may be omitted when opening an existing one (it must match when given). ``operator``: the
    account that signs a checkpoint with every batch and must have signed the stored one (a hub
    passes its own); a file that fails the start-up check raises :class:`LedgerCorrupted` with one
    line naming the fault and the fix. ``audit=True`` opens such a file anyway, refusing writes,
    and :meth:`verify` reports the fault (``problem`` holds it)."""

    def __init__(
        self,
        path: str | Path,
        config: NetworkConfig | None = None,
        *,
        clock: Callable[[], int] | None = None,
        synchronous: str = "FULL",
        operator: Account | None = None,
        audit: bool = False,
    ) -> None:
        if synchronous not in ("FULL", "NORMAL", "EXTRA"):
            raise LedgerError("synchronous must be FULL, EXTRA or NORMAL")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._operator = operator
        self._beside, self._beside_at = self.path.with_name(self.path.name + ".checkpoint"), 0.0
        self.problem: str | None = None
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db = db
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={synchronous}")
            db.execute("PRAGMA busy_timeout=5000")
            db.executescript(_SCHEMA)
            config = self._genesis(config)
            with self._read_snapshot():
                state, self._total = self._load_state(config)
                head = self._read_head(config)
                events, self._events_head = self._events_chain()
                try:
                    covered = self._check_stored(config, state, head, events)
                except LedgerCorrupted as exc:
                    if not audit:
                        raise
                    self.problem, covered = str(exc), True
        except LedgerCorrupted as exc:
            db.close()
            raise self._refusal(str(exc)) from None
        except sqlite3.DatabaseError as exc:  # not a database, or a table edited out of shape
            db.close()
            raise self._refusal(f"unreadable ledger file ({exc})") from None
        except BaseException:
            db.close()
            raise
        super().__init__(config, state, head, event_count=events, clock=clock)
        if operator is not None and not covered and not audit:
            # a new ledger, or entries appended without the operator's key: check them all first
            report = self.verify() if head.height else None
            if report is not None and not report.ok:
                self.problem = report.problem  # (close() then leaves the checkpoint file alone)
                self.close()
                raise self._refusal(f"{report.problem} (found by a full replay)")
            self.seal(operator)
        elif operator is not None and not audit:
            self._write_beside(self.checkpoint_record())  # type: ignore[arg-type]  # covered: one exists

    def _refusal(self, problem: str) -> LedgerCorrupted:
        """The one-line error of a file that fails the start-up check: the fault and the fix."""
        return LedgerCorrupted(
            f"{self.path}: {problem}. Inspect it with `deai ledger verify --path {self.path}` and restore"
            " it from a backup (if it verifies and is as you left it, `deai ledger seal` signs a new"
            " checkpoint)"
        )

    def _load_state(self, config: NetworkConfig) -> tuple[State, int]:
        """The stored state and its digest total (over the state as loaded, defaults included)."""
        try:
            state = State.from_rows(config, self._state_rows())
            height = state.meta("height")
        except (DeaiError, ValueError, TypeError, RecursionError) as exc:
            raise LedgerCorrupted(f"unreadable state tables ({exc})") from None
        if not isinstance(height, int):
            raise LedgerCorrupted(f"the stored height {height!r} is not an integer")
        return state, _state_total(state)

    def _events_chain(self) -> tuple[int, str]:
        """(number of stored events, the head of their hash chain)."""
        head, count = EVENTS_GENESIS, 0
        try:
            for seq, height, kind, data in self._db.execute(
                "SELECT seq, height, kind, data FROM events ORDER BY seq"
            ):
                head, count = event_link(head, seq, height, kind, data), count + 1
        except (ValueError, TypeError, AttributeError, OverflowError) as exc:
            raise LedgerCorrupted(f"unreadable event table ({exc})") from None
        return count, head

    def _check_stored(self, config: NetworkConfig, state: State, head: Head, events: int) -> bool:
        """The start-up check (see the module docstring). Raises LedgerCorrupted naming the fault;
        returns False when the stored checkpoint does not cover the whole log (none yet, or entries
        appended after it) -- the state then cannot be checked without a full replay."""
        if state.meta("height") != head.height:
            raise LedgerCorrupted(
                f"state tables are at height {state.meta('height')}, the log at {head.height}"
            )
        row = self._db.execute("SELECT v FROM meta WHERE k = 'checkpoint'").fetchone()
        cp = None if row is None else Checkpoint.from_json(row[0])
        beside = self._read_beside()
        heights = {c.height for c in (cp, beside) if c is not None}
        _, _, heads = check_chain(config.genesis_hash, self._log_entries(), heights)
        for what, c in (("the checkpoint", cp), ("the checkpoint file", beside)):
            if c is not None:
                self._check_prefix(c, what, config, head, heads)
        if cp is None:
            if self._operator is not None and head.height > 0:
                raise LedgerCorrupted(
                    f"the log has {head.height} entries but no signed checkpoint (deleted, or written"
                    " without the operator's key)"
                )
            return False
        if beside is None and self._operator is not None:
            raise LedgerCorrupted(f"the checkpoint file {self._beside.name} beside the ledger is missing")
        if cp.height < head.height:
            return False
        if state_digest(self._total) != cp.state:
            raise LedgerCorrupted("the state tables differ from the signed checkpoint: a row was edited")
        if (events, self._events_head) != (cp.events, cp.events_head):
            raise LedgerCorrupted("the event table differs from the signed checkpoint: an event was edited")
        return True

    def _check_prefix(
        self, cp: Checkpoint, what: str, config: NetworkConfig, head: Head, heads: dict[int, str]
    ) -> None:
        """The stored log extends ``cp``: same network, not shorter, same hash at its height."""
        if self._operator is not None and cp.signer != self._operator.address:
            raise LedgerCorrupted(
                f"{what} is signed by {cp.signer}, not by this ledger's operator {self._operator.address}"
            )
        if cp.network != config.network or cp.genesis != config.genesis_hash:
            raise LedgerCorrupted(f"{what} is of another network config")
        if cp.height > head.height:
            raise LedgerCorrupted(
                f"the log ends after {head.height} entries but {what} is at {cp.height}: entries were removed"
            )
        if heads.get(cp.height) != cp.head:
            raise LedgerCorrupted(f"log entry {cp.height - 1} differs from {what}: the log was rewritten")

    def _read_beside(self) -> Checkpoint | None:
        """The checkpoint file beside the database (None if there is none)."""
        try:
            with open(self._beside, "rb") as f:
                data = f.read(8192)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise LedgerCorrupted(f"the checkpoint file is unreadable ({exc})") from None
        try:
            return Checkpoint.from_json(data.decode())
        except UnicodeDecodeError:
            raise LedgerCorrupted("the checkpoint file is not a checkpoint") from None

    def _write_beside(self, cp: Checkpoint) -> None:
        """Replace the checkpoint file atomically and durably (written at open, seal and close,
        and at most once a minute while writing: it outlives a deleted or wiped database)."""
        tmp = self._beside.with_name(self._beside.name + ".tmp")
        with open(tmp, "w") as f:
            f.write(cp.to_json())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._beside)
        self._beside_at = time.monotonic()

    def seal(self, account: Account) -> Checkpoint:
        """Sign and store a checkpoint of the ledger as stored now, as ``account``. The ledger does
        this itself with every batch when opened with an ``operator``; call it by hand only for a
        file whose full replay (:meth:`verify`) you checked -- the signature vouches for it."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                _, total = self._load_state(self.config)
                head = self._read_head(self.config)
                events, events_head = self._events_chain()
                cp = Checkpoint.create(
                    account,
                    network=self.config.network,
                    genesis=self.config.genesis_hash,
                    height=head.height,
                    head=head.hash,
                    state=state_digest(total),
                    events=events,
                    events_head=events_head,
                )
                self._db.execute("INSERT OR REPLACE INTO meta VALUES ('checkpoint', ?)", (cp.to_json(),))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._write_beside(cp)
            self._total, self._events_head = total, events_head
            return cp

    def checkpoint_record(self) -> Checkpoint | None:
        """The stored checkpoint (None if none), signature checked against its stated signer."""
        with self._lock:
            row = self._db.execute("SELECT v FROM meta WHERE k = 'checkpoint'").fetchone()
        return None if row is None else Checkpoint.from_json(row[0])

    def verify(self) -> VerifyReport:
        report = super().verify()
        if report.ok and self.problem is not None:  # audit mode: what the start-up check found
            return replace(report, ok=False, problem=self.problem)
        return report

    # -- opening --------------------------------------------------------------------------------------

    def _genesis(self, config: NetworkConfig | None) -> NetworkConfig:
        row = self._db.execute("SELECT v FROM meta WHERE k = 'config'").fetchone()
        if row is None:
            if config is None:
                raise LedgerError(f"{self.path} holds no ledger; creating one needs a network config")
            self._db.execute("INSERT INTO meta VALUES ('config', ?)", (canonical(config.to_dict()).decode(),))
            return config
        try:
            stored = NetworkConfig.from_dict(json.loads(row[0]))
        except (DeaiError, ValueError, TypeError, KeyError, RecursionError) as exc:
            raise LedgerCorrupted(f"unreadable network config ({exc})") from None
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

    def _persist(
        self, entries: list[LogEntry], events: list[Event], before: dict[tuple[str, str], Any]
    ) -> None:
        if self.problem is not None:
            raise LedgerCorrupted(f"{self.path} is open for audit only: {self.problem}")
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
        total = self._total
        for (tbl, k), old in before.items():
            value = tables[tbl].get(k)
            if value is None:
                deletes.append((tbl, k))
            else:
                upserts.append((tbl, k, _dumps(value)))
            if self._operator is not None:  # the digest moves by the rows the batch touched
                if old is not None:
                    total -= row_point(tbl, k, _dumps(old))
                if value is not None:
                    total += row_point(tbl, k, upserts[-1][2])
        event_rows = [(e.seq, e.height, e.kind, _dumps(e.data)) for e in events]
        checkpoint, events_head = None, self._events_head
        if self._operator is not None:
            for row in event_rows:
                events_head = event_link(events_head, *row)
            checkpoint = Checkpoint.create(
                self._operator,
                network=self.config.network,
                genesis=self.config.genesis_hash,
                height=entries[-1].seq + 1,
                head=entries[-1].hash,
                state=state_digest(total),
                events=self._event_count,
                events_head=events_head,
            )
        db.execute("BEGIN IMMEDIATE")
        try:
            last = db.execute("SELECT COALESCE(MAX(seq), -1) FROM log").fetchone()[0]
            if last != entries[0].seq - 1:
                raise LedgerError("the ledger file was written by another process; reopen it")
            db.executemany("INSERT INTO log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
            db.executemany("INSERT INTO events VALUES (?, ?, ?, ?)", event_rows)
            db.executemany("INSERT OR REPLACE INTO state VALUES (?, ?, ?)", upserts)
            db.executemany("DELETE FROM state WHERE tbl = ? AND key = ?", deletes)
            if checkpoint is not None:  # same transaction: the signed checkpoint never lags the log
                db.execute("INSERT OR REPLACE INTO meta VALUES ('checkpoint', ?)", (checkpoint.to_json(),))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._total, self._events_head = total, events_head
        if checkpoint is not None and time.monotonic() - self._beside_at > 60:
            self._write_beside(checkpoint)

    def _log_entries(self, since: int = 0, limit: int | None = None) -> Iterator[LogEntry]:
        cursor = self._db.cursor()
        cursor.execute(
            "SELECT seq, prev_hash, time, tx, signature, events_hash, hash FROM log WHERE seq >= ?"
            " ORDER BY seq LIMIT ?",
            (since, -1 if limit is None else limit),
        )
        for seq, prev, t, tx, sig, ev, h in cursor:
            yield LogEntry(seq, prev, t, _blob(tx), _blob(sig), ev, h)

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
                "SELECT seq, time, tx, hash FROM log WHERE sender = ? ORDER BY seq DESC LIMIT ?",
                (address, limit),
            ).fetchall()
        # kind, sender and nonce come from the hashed transaction bytes, not from their index columns
        records = [(s, t, json.loads(tx), h) for s, t, tx, h in rows]
        return [
            TxRecord(s, t, d["kind"], d["sender"], d["nonce"], d["body"], h)
            for s, t, d, h in records
            if d["sender"] == address
        ]

    def close(self) -> None:
        with self._lock:
            if self._operator is not None and self.problem is None:
                try:  # the checkpoint file follows the last batch on a clean stop
                    cp = self.checkpoint_record()
                    if cp is not None:
                        self._write_beside(cp)
                except (sqlite3.ProgrammingError, DeaiError, OSError):  # closed twice, or unwritable
                    pass
            self._db.close()
