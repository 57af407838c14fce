"""Ledger throughput: signed transactions applied per second on SQLite, durable.

Prints JSON. Clients sign transfers beforehand (signing is the client's cost); the ledger receives
wire bytes and does everything a real submission needs: parse, check every field, recover the
signer (EIP-191, secp256k1), check the nonce, apply, hash-chain the log entry, and write log,
events and touched state rows in one SQLite transaction with ``synchronous=FULL`` (fsync'd WAL:
a receipt survives power loss). Batches of ``--batch`` transactions share one commit
(``submit_many``); a per-transaction commit run is reported beside it.

The baseline, measured in the same run, is raw SQLite: inserting the very log and event rows the
ledger wrote into the same schema, same batches, same durability, with no parsing, signatures or
state machine. ``ratio_to_raw_inserts`` = ledger rate / raw rate.

    python benchmarks/ledger.py [--small] [--txs N] [--batch B]
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import tempfile
import time
from pathlib import Path

from deai.core.accounts import Account
from deai.ledger import MemoryLedger, NetworkConfig, SignedTx, SqliteLedger, txs
from deai.ledger.sqlite import _SCHEMA
from deai.ledger.tx import _recover_fast

NETWORK = "bench"


def make_txs(n: int, users: list[Account], minter: Account) -> tuple[list[bytes], list[bytes]]:
    """Genesis mints and ``n`` transfers among ``users``, signed, as wire bytes."""
    mints = [
        SignedTx.create(minter, txs.Mint(to=u.address, amount=10**12), nonce=i, network=NETWORK).to_bytes()
        for i, u in enumerate(users)
    ]
    nonces = [0] * len(users)
    transfers = []
    for i in range(n):
        s, r = i % len(users), (i * 7 + 3) % len(users)
        tx = txs.Transfer(to=users[r].address, amount=1 + i % 1000)
        transfers.append(SignedTx.create(users[s], tx, nonce=nonces[s], network=NETWORK).to_bytes())
        nonces[s] += 1
    return mints, transfers


def run_ledger(ledger, mints: list[bytes], transfers: list[bytes], batch: int) -> float:
    ledger.submit_many(mints)
    t = time.perf_counter()
    for i in range(0, len(transfers), batch):
        for result in ledger.submit_many(transfers[i : i + batch]):
            if not hasattr(result, "height"):
                raise RuntimeError(f"benchmark transaction refused: {result}")
    return len(transfers) / (time.perf_counter() - t)


def run_raw(
    rows_log: list[tuple], rows_events: list[tuple], path: Path, batch: int, per_tx_events: int
) -> float:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.executescript(_SCHEMA)
    t = time.perf_counter()
    for i in range(0, len(rows_log), batch):
        db.execute("BEGIN IMMEDIATE")
        db.executemany("INSERT INTO log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows_log[i : i + batch])
        j = i * per_tx_events
        db.executemany("INSERT INTO events VALUES (?, ?, ?, ?)", rows_events[j : j + batch * per_tx_events])
        db.execute("COMMIT")
    rate = len(rows_log) / (time.perf_counter() - t)
    db.close()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", action="store_true", default=os.environ.get("DEAI_SMALL") == "1")
    parser.add_argument("--txs", type=int, default=None)
    parser.add_argument("--batch", type=int, default=256)
    args = parser.parse_args()
    n = args.txs or (2_000 if args.small else 20_000)
    minter = Account.from_seed("bench-ledger", 0)
    users = [Account.from_seed("bench-ledger", i) for i in range(1, 65)]
    config = NetworkConfig(minter=minter.address, network=NETWORK)
    mints, transfers = make_txs(n, users, minter)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        batched = SqliteLedger(tmp / "batched.sqlite", config)
        batched_rate = run_ledger(batched, mints, transfers, args.batch)
        t = time.perf_counter()
        report = batched.verify()
        verify_rate = report.entries / (time.perf_counter() - t)
        assert report.ok, report.problem
        log_rows = batched._db.execute(
            "SELECT * FROM log WHERE seq >= ? ORDER BY seq", (len(mints),)
        ).fetchall()
        event_rows = batched._db.execute(
            "SELECT * FROM events WHERE height >= ? ORDER BY seq", (len(mints),)
        ).fetchall()
        batched.close()
        raw_batched = run_raw(
            log_rows, event_rows, tmp / "raw.sqlite", args.batch, len(event_rows) // len(log_rows)
        )

        single_n = max(200, n // 10)
        single = SqliteLedger(tmp / "single.sqlite", config)
        single_rate = run_ledger(single, mints, transfers[:single_n], 1)
        single.close()
        raw_single = run_raw(log_rows[:single_n], event_rows, tmp / "raw1.sqlite", 1, 1)

        memory_rate = run_ledger(MemoryLedger(config), mints, transfers, args.batch)

    stx = SignedTx.from_bytes(transfers[0])
    t = time.perf_counter()
    for _ in range(500):
        _recover_fast(stx.signing_bytes, stx.signature)
    recover_us = (time.perf_counter() - t) / 500 * 1e6

    print(
        json.dumps(
            {
                "benchmark": "ledger",
                "transactions": n,
                "tx_kind": "transfer (signed, from wire bytes)",
                "durability": "SQLite WAL, synchronous=FULL",
                "batch": args.batch,
                "sqlite_batched_tx_per_s": round(batched_rate),
                "raw_sqlite_batched_rows_per_s": round(raw_batched),
                "ratio_to_raw_inserts": round(batched_rate / raw_batched, 4),
                "sqlite_per_tx_commit_tx_per_s": round(single_rate),
                "raw_sqlite_per_tx_commit_rows_per_s": round(raw_single),
                "per_tx_commit_ratio_to_raw": round(single_rate / raw_single, 4),
                "memory_backend_tx_per_s": round(memory_rate),
                "verify_replay_tx_per_s": round(verify_rate),
                "signature_recovery_us": round(recover_us, 1),
                "target_tx_per_s": 2_000,
                "cpu_count": os.cpu_count(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
