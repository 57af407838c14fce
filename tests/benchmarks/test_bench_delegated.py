"""The delegated-training benchmark in small form: every cheating trainer disputed is caught and
slashed, no honest trainer is, the bisection isolates one step in ceil(log2 T) rounds, and the
figures it promises are printed."""

import pytest
from bench_runner import run_small


@pytest.mark.slow
def test_delegated_training_benchmark_small_form():
    result = run_small("delegated_training")
    assert set(result["catch"]) == {
        "skip_steps", "other_data", "fewer_epochs", "stale_checkpoint", "forged_state", "lazy_copy",
    }  # fmt: skip
    for name, c in result["catch"].items():
        assert c["disputed_jobs"] >= 4 and c["catch_rate"] == 1.0, name
        assert c["jobs_with_honest_slashed"] == 0, name
    assert result["honest"]["disputes"] == 0 and result["honest"]["jobs_with_a_slash"] == 0
    b = result["bisection"]
    assert b["rounds"] == b["expected_rounds"] and b["steps_reexecuted"] == 1
    assert b["divergent_step"] == b["forged_at"] and b["liar_slashed"]
    calibration = result["calibration"]
    assert calibration["one_step_within_rule"] and calibration["skipped_step_outside_rule"]
    assert {"cost_over_plain", "hashing_over_plain"} <= set(result["cost"])  # timings: figures only
