"""The workload and aggregation-memory benchmarks in small form (what their full runs measure, on
tiny sizes: the scripts run and print the figures and goals they promise)."""

import json
import os
import subprocess
import sys

import pytest
from bench_runner import ROOT, run_small


def run_section(section: str) -> dict:
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "workloads.py"), section, "--small"],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "DEAI_SMALL": "1", "HF_HUB_OFFLINE": "1"},
    )
    if out.returncode and "MissingData" in out.stderr and os.environ.get("CI", "").lower() != "true":
        pytest.skip(out.stderr.strip().splitlines()[-1])
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout)[section]


@pytest.mark.slow
@pytest.mark.parametrize("section", ["fashion", "shakespeare", "lora", "round"])
def test_workloads_benchmark_small_form(section):
    result = run_section(section)
    assert (
        result["figures"]
        and set(result["goals"])
        and all(isinstance(v, bool) for v in result["goals"].values())
    )
    if section == "lora":
        assert result["figures"]["update_fraction"] < 0.01  # only adapters travel, at any size
    if section == "round":  # timings are figures, not assertions: at this size they are noise
        assert {"memory_over_plain", "http_over_plain"} <= set(result["figures"])


@pytest.mark.slow
def test_aggregation_memory_benchmark_small_form():
    result = run_small("aggregation_memory")
    rows = result["results"]
    assert rows and all(r["same_bits"] for r in rows)  # streamed and stacked agree bit for bit
