"""The task-settings benchmark in its small form: the declared preprocessing beats raw features,
the join grace starts a short-handed task long before its window ends."""

import pytest
from bench_runner import run_small


@pytest.mark.slow
def test_task_settings_benchmark_small_form():
    result = run_small("task_settings")
    pre = result["preprocessing"]
    assert pre["standardize"][0] > 0.7 and pre["ratio"] > 1.5  # raw digits into the MLP: near chance
    assert result["server_momentum"]["ratio"] > 0
    grace = result["join_grace"]
    assert grace["grace_ms"] < grace["whole_window_ms"] and grace["ratio"] < 0.5
