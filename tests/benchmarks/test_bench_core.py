import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_core_benchmark_small_form():
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "core.py"), "--small"],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
        env={**os.environ, "DEAI_SMALL": "1"},
    )
    result = json.loads(out.stdout)
    assert result["envelopes"]["verified_per_s"] > 0
    assert result["blobs"]["durable"]["write_ratio_vs_copy"] > 0
