"""The compression benchmark in its quick form: every run goes through the network code, the
figures it promises are there, and the byte counts behave as the codecs say (the uplink shrinks,
the downlink stays the dense checkpoint)."""

import json
import os
import subprocess
import sys

import pytest
from bench_runner import ROOT


@pytest.mark.slow
def test_compression_benchmark_quick_form():
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "compression.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    if out.returncode and "MissingData" in out.stderr and os.environ.get("CI", "").lower() != "true":
        pytest.skip(out.stderr.strip().splitlines()[-1])
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout)
    assert result["form"] == "quick" and set(result["workloads"]) == {"fashion", "shakespeare"}
    for name, w in result["workloads"].items():
        runs = {(r["codec"], r["byzantine"]): r for r in w["runs"]}
        dense, comp = runs[("none", False)], runs[("topk(ratio=0.01)+int2", False)]
        assert dense["uplink_ratio_vs_dense"] == 1.0
        assert comp["uplink_blob_per_provider_round"] < dense["uplink_blob_per_provider_round"] / 4
        # the checkpoint comes down dense whatever the providers send up
        assert comp["downlink_blob_per_provider_round"] == pytest.approx(
            dense["downlink_blob_per_provider_round"], rel=0.01
        )
        assert comp["round_total_ratio_vs_dense"] < comp["uplink_ratio_vs_dense"]
        assert all(s > 0 for r in w["runs"] for s in r["sim_round_seconds"])
        assert ("topk(ratio=0.01)+int2", True) in runs and "default" in runs[("topk(ratio=0.01)+int2", True)][
            "aggregator"
        ]
        assert set(w["goals"]) and all(isinstance(v, bool) for v in w["goals"].values()), name
