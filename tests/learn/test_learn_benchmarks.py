"""The learn benchmarks in small form (slow-marked; CI runs them with DEAI_SMALL=1)."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))


@pytest.mark.slow
def test_robustness_benchmark_small_form(tmp_path, monkeypatch):
    monkeypatch.setenv("DEAI_SMALL", "1")
    import robustness

    out = robustness.main(["--out", str(tmp_path)])
    assert (tmp_path / "robustness_quick.md").exists() and (tmp_path / "robustness_quick.png").exists()
    assert out["baseline_fedavg"]["iid"]["mean"] > 85
    cells = {(c["partition"], c["aggregator"], c["attack"]): c for c in out["cells"]}
    assert {a for _, _, a in cells} == {"none", "alie", "ipm", "backdoor"}
    # Krum selects the colluding IPM rows under label skew: far below the defended run.
    assert (
        cells[("dirichlet", "krum", "ipm")]["mean"]
        < cells[("dirichlet", robustness.DEFAULT_DEFENSE, "ipm")]["mean"] - 20
    )
    assert 0 <= cells[("iid", "mean", "backdoor")]["backdoor_mean"] <= 100


@pytest.mark.slow
def test_aggregate_benchmark_small_form(monkeypatch):
    monkeypatch.setenv("DEAI_SMALL", "1")
    import aggregate

    out = aggregate.main(["--repeats", "1", "--n", "40", "--f", "5"])
    assert out["d"] == 100_000
    assert set(out["aggregators"]) == set(aggregate.SPECS)
    assert all(v["ratio_to_mean"] > 0 for v in out["aggregators"].values())
    assert out["krum_scaling"]["fitted_exponent_in_n"] > 0
