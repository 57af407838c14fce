"""The incentives benchmark in small form (DEAI_SMALL=1): runs end to end and meets its floors,
including the graded-quality populations (score vs quality set by construction)."""

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
        timeout=300,
        env={**os.environ, "DEAI_SMALL": "1"},
    )
    result = json.loads(out.stdout)
    assert result["quick"] and (tmp_path / "inc.md").read_text().startswith("# Incentives")
    for r in result["methods"].values():
        assert r["free_riders_detected"] == 1.0 and r["duplicates_detected"] == 1.0 and r["noise_unpaid"]
        assert r["honest_share"] >= 0.8 and r["spearman"] > 0.5
    # the mixed population's honest share includes what the mislabeled providers (70% clean labels)
    # earn: the equal-length game judges their directions, not their shorter updates (90.9% at
    # 10 rounds, 0.89 at the quick form's 3)
    assert result["methods"]["gtg_shapley"]["honest_share"] >= 0.85
    assert result["ledger_settlement"]["conserved"]
    for kind, per in result["adversaries"].items():  # 25% of each adversary kind
        for m, r in per.items():
            assert r["honest_flagged_rounds"] == 0, (kind, m)
            if kind.startswith("scaled_"):  # honest data sent s times longer: paid as if sent as is
                # (GTG-Shapley; LOO's and RONI's median honest payout is small and noisy, and the
                # benchmark's global step takes the scaled rows as sent: see the results page)
                if m == "gtg_shapley":
                    assert r["adversary_over_median_honest"] <= 1.0, (kind, m)
            elif kind != "none":
                assert r["adversary_over_median_honest"] < 0.1, (kind, m)
                assert per["gtg_shapley"]["honest_share"] >= 0.97, kind
    for kind, per in result["scaled_raw_lengths"].items():  # before: raw lengths paid the scaling
        assert per["gtg_shapley"] > 2.0, kind
    assert result["copies_at_scale"]["flagged_as_copies"] == 0
    graded = result["graded"]  # true quality set by construction
    assert set(graded) == {"label_noise", "sample_count", "feature_noise"}
    for variant, g in graded.items():
        assert len(g["quality"]) == 20
        for m, r in g["methods"].items():
            assert r["flagged_rounds"] == 0, (variant, m)  # honest data of any quality is never flagged
            assert len(r["spearman_per_round"]) == result["rounds"]
    for m in ("loo", "gtg_shapley", "roni"):
        assert graded["label_noise"]["methods"][m]["spearman"] >= 0.85, m
        assert graded["sample_count"]["methods"][m]["spearman"] >= 0.85, m
        # with equal update lengths the game ranks feature noise by quality; raw lengths paid the
        # noisier providers' longer steps
        r = graded["feature_noise"]["methods"][m]
        assert r["spearman"] >= 0.9 and r["spearman"] > r["spearman_raw_lengths"], m
