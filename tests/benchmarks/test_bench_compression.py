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
        dense, comp = runs[("dense", False)], runs[("topk1%+int2 up+down", False)]
        assert dense["uplink_ratio_vs_dense"] == 1.0 and dense["global_compression"] == "none"
        assert comp["uplink_blob_per_provider_round"] < dense["uplink_blob_per_provider_round"] / 4
        # round 0 fetches the initial checkpoint whole either way; later rounds a compressed patch
        assert comp["downlink_blob_first_round"] == pytest.approx(
            dense["downlink_blob_first_round"], rel=0.01
        )
        assert comp["downlink_blob_per_provider_round"] < dense["downlink_blob_per_provider_round"] / 4
        assert comp["round_blobs_ratio_vs_dense"] > 4
        # protocol messages (statements, polls) are not compressed: everything shrinks less than blobs
        assert comp["round_all_ratio_vs_dense"] < comp["round_blobs_ratio_vs_dense"]
        assert all(s > 0 for r in w["runs"] for s in r["sim_round_seconds"])
        attacked = runs[("topk1%+int2 up+down", True)]
        assert attacked["aggregator"] == "default" and "f=1" in attacked["defense"]
        assert set(w["goals"]) and all(isinstance(v, bool) for v in w["goals"].values()), name
