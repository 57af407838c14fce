"""A small durable key-value store (SQLite, WAL) for node state: JSON values, atomic batches."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = ["KV"]


class KV:
    """``KV(path)`` or ``KV(None)`` (in memory). ``put_many`` writes several keys in one transaction."""

    def __init__(self, path: str | Path | None) -> None:
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            ":memory:" if path is None else str(path), check_same_thread=False, isolation_level=None
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v TEXT NOT NULL)")

    def get(self, key: str, default: Any = None) -> Any:
        with self._lock:
            row = self._db.execute("SELECT v FROM kv WHERE k = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def put(self, key: str, value: Any) -> None:
        self.put_many({key: value})

    def put_many(self, items: Mapping[str, Any]) -> None:
        rows = [(k, json.dumps(v, separators=(",", ":"))) for k, v in items.items()]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("INSERT OR REPLACE INTO kv VALUES (?, ?)", rows)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def items(self, prefix: str = "") -> Iterator[tuple[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT k, v FROM kv WHERE k >= ? AND k < ? ORDER BY k", (prefix, prefix + "\uffff")
            ).fetchall()
        for k, v in rows:
            yield k, json.loads(v)

    def close(self) -> None:
        self._db.close()
