import pytest
from bench_runner import run_small


@pytest.mark.slow
def test_core_benchmark_small_form():
    result = run_small("core")
    assert result["envelopes"]["verified_per_s"] > 0
    assert result["blobs"]["durable"]["write_ratio_vs_copy"] > 0


@pytest.mark.slow
def test_inference_benchmark_small_form():
    result = run_small("inference")
    for r in ("r1", "r3"):
        assert result[r]["answers_equal_direct"] == result["requests"]
    assert result["ledger_verified"]
