import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_inference_benchmark_small_form():
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "inference.py"), "--small"],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
        env={**os.environ, "DEAI_SMALL": "1"},
    )
    result = json.loads(out.stdout)
    for r in ("r1", "r3"):
        assert result[r]["answers_equal_direct"] == result["requests"]
    assert result["ledger_verified"]
