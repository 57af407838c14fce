"""The secure aggregation benchmark in small form (DEAI_SMALL=1 in CI)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_secagg_benchmark_runs_and_meets_its_targets():
    env = {**os.environ, "DEAI_SMALL": os.environ.get("DEAI_SMALL", "1")}
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "secagg.py")],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    report = json.loads(out.stdout)
    assert report["max_abs_error"] <= report["error_bound"]
    assert report["exact_ring_sum"] is True
    assert report["bandwidth_expansion"] <= 1.5
    assert report["dropped"] == round(report["providers"] * report["dropout_rate"])
