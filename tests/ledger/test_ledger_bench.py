"""The ledger benchmark runs end to end in small form and prints the JSON it promises."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_ledger_benchmark_small():
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "ledger.py"), "--small", "--txs", "600"],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
        env={**os.environ, "DEAI_SMALL": "1"},
    )
    report = json.loads(out.stdout)
    assert report["transactions"] == 600
    for name in ("sqlite_batched_tx_per_s", "raw_sqlite_batched_rows_per_s", "ratio_to_raw_inserts"):
        assert report[name] > 0
