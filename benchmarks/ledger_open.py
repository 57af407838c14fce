"""The cost of a hub's start-up check against its signed checkpoint, and of signing it per batch.

Prints JSON. Builds a SQLite ledger of ``--txs`` signed transfers (64 accounts) written by its
operator (a checkpoint signed with every batch of ``--batch``), then times: reopening it with the
operator's account (hash chain walk + state digest + event chain + checkpoint signature), the full
replay that ``deai ledger verify`` runs (signatures and state machine), and the write rate with and
without an operator (the per-batch checkpoint signature and digest update).

    python benchmarks/ledger_open.py [--small] [--txs N] [--batch B]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from deai.core.accounts import Account
from deai.ledger import NetworkConfig, SqliteLedger

sys.path.insert(0, str(Path(__file__).parent))
from ledger import make_txs, run_ledger  # benchmarks/ledger.py: the same workload


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", action="store_true", default=os.environ.get("DEAI_SMALL") == "1")
    parser.add_argument("--txs", type=int, default=None)
    parser.add_argument("--batch", type=int, default=256)
    args = parser.parse_args()
    n = args.txs or (5_000 if args.small else 100_000)
    minter, operator = Account.from_seed("bench-ledger", 0), Account.from_seed("bench-ledger-hub", 0)
    users = [Account.from_seed("bench-ledger", i) for i in range(1, 65)]
    config = NetworkConfig(minter=minter.address, network="bench")
    mints, transfers = make_txs(n, users, minter)
    with tempfile.TemporaryDirectory() as tmp:
        sealed = SqliteLedger(Path(tmp) / "sealed.sqlite", config, operator=operator)
        sealed_rate = run_ledger(sealed, mints, transfers, args.batch)
        sealed.close()
        plain = SqliteLedger(Path(tmp) / "plain.sqlite", config)
        plain_rate = run_ledger(plain, mints, transfers[: n // 5], args.batch)
        plain.close()
        t = time.perf_counter()
        ledger = SqliteLedger(Path(tmp) / "sealed.sqlite", operator=operator)
        open_s = time.perf_counter() - t
        entries, rows = ledger.head().height, len(ledger.state().tables["balances"])
        t = time.perf_counter()
        assert ledger.verify().ok
        verify_s = time.perf_counter() - t
        ledger.close()
    print(
        json.dumps(
            {
                "benchmark": "ledger_open",
                "entries": entries,
                "balances": rows,
                "batch": args.batch,
                "open_with_checkpoint_check_s": round(open_s, 3),
                "full_replay_verify_s": round(verify_s, 3),
                "write_tx_per_s_with_operator": round(sealed_rate),
                "write_tx_per_s_without_operator": round(plain_rate),
                "cpu_count": os.cpu_count(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
