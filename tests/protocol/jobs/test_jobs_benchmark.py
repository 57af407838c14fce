import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_verification_benchmark_small_form(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "verification.py"),
            "--small",
            "--out",
            str(tmp_path / "v.md"),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
        env={**os.environ, "DEAI_SMALL": "1"},
    )
    result = json.loads(out.stdout)
    for name, d in result["detection"].items():
        assert d["jobs_with_honest_slashed"] == 0, name
        # every cheater in a replicated job is slashed, except a colluder whose bloc outvoted an
        # honest minority and who is not drawn into the escalation (unpaid, not slashed: the
        # ledger faults only with a strict majority within one attempt)
        escaped = d["outvoted_not_slashed"] if name == "colluding" else 0
        assert d["caught_in_replicated"] + escaped == d["replicated_jobs_with_cheater"], name
    assert [d["executions_per_job"] for d in result["overhead"]][-1] == 3.0
    assert result["refereed"]["rounds"] == result["refereed"]["expected_rounds"]
    assert result["refereed"]["steps_reexecuted"] == 1
    assert all(c.get("within_rule", True) for c in result["calibration"])
    assert (tmp_path / "v.md").read_text().startswith("# Verified computation")
