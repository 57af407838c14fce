"""The incentives benchmark in small form (DEAI_SMALL=1): runs end to end and meets its floors."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_incentives_benchmark_small_form(tmp_path):
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "incentives.py"), "--out", str(tmp_path / "inc.md")],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env={**os.environ, "DEAI_SMALL": "1"},
    )
    result = json.loads(out.stdout)
    assert result["quick"] and (tmp_path / "inc.md").read_text().startswith("# Incentives")
    for r in result["methods"].values():
        assert r["free_riders_detected"] == 1.0 and r["duplicates_detected"] == 1.0 and r["noise_unpaid"]
        assert r["honest_share"] >= 0.8 and r["spearman"] > 0.5
    assert result["methods"]["gtg_shapley"]["honest_share"] >= 0.9
    assert result["ledger_settlement"]["conserved"]
