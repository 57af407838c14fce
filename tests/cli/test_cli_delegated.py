"""A task creator rents verified training with `deai task submit` (slow): a hub and compute daemons
as processes, the delegated scenario submitted from the command line, its training data published by
the creator, the cheating trainer slashed in a dispute."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from deai.cli.main import app
from deai.sim.plan import NetworkPlan
from deai.sim.scenario import load_scenario

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "delegated.yaml"


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_deai_task_submit_runs_a_delegated_task(tmp_path):
    plan = NetworkPlan.from_scenario(load_scenario(SCENARIO))
    net = plan.processes(tmp_path, with_hosts=False)
    try:
        tag = plan.creator  # the scenario's creator account, seed:s5creator:0
        result = CliRunner().invoke(
            app,
            ["task", "submit", str(SCENARIO), "--account", "seed:s5creator:0", "--hub", net.url, "--watch"],
        )
        assert result.exit_code == 0, result.output
        client = net.client(tag)
        events = client.events(0, 100_000)[0]
        cheater = next(a for a, b in plan.behaviours.items() if b == "skip_steps")
        trained = [e for e in events if e.get("kind") == "job_resolved"]
        assert trained and all(e["data"]["status"] == "accepted" for e in trained)
        slashed = {e["data"]["account"] for e in events if e.get("kind") == "slashed"}
        assert slashed <= {cheater}  # nobody honest is slashed
        disputes = [e for e in trained if cheater in e["data"]["faulted"]]
        assert bool(disputes) == bool(slashed)
    finally:
        net.stop()
