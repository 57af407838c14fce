"""The LLM-inference benchmark in small form (slow-marked): it runs and reports the figures."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[4]


@pytest.mark.slow
def test_llm_inference_benchmark_small_form():
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "llm_inference.py"),
            "--quick",
            "--no-smollm2",
            "--tiny-count",
            "10",
            "--tiny-cal",
            "2",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    r = json.loads(out.stdout)
    tiny = r["tiny"]
    assert tiny["honest"]["generations"] == 10 and tiny["honest"]["false_positive_rate"] == 0.0
    assert tiny["worst_false_negative_rate"] == 0.0 and len(tiny["cheaters"]) == 9
    assert tiny["costs"]["proof_bytes_per_32_tokens"] == 258
    assert 0 < tiny["costs"]["verification_time_ratio"] < 1
