import pytest
from bench_runner import run_small

from deai.testing.attacks import CATALOGUE


@pytest.mark.slow
def test_attacks_benchmark_small_form():
    result = run_small("attacks")
    ran = {a.name for a in CATALOGUE if not a.slow}
    assert set(result["attacks"]) == ran and set(result["skipped"]) == {a.name for a in CATALOGUE if a.slow}
    for outcome in result["attacks"].values():
        assert 0 <= outcome["refused"] <= outcome["attempts"] and outcome["attempts"] >= 1
    assert result["totals"]["attempts"] == sum(a["attempts"] for a in result["attacks"].values())
    flood = result["flood"]
    assert flood["requests"] > 0 and flood["throughput_ratio"] > 0 and flood["hub_peak_rss_mb"] > 0
    assert result["rounds"]["seconds_per_round"] > 0 and result["rounds"]["ratio"] > 0
