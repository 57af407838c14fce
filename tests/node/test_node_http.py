"""A task over HTTP between real processes on loopback, and the same task in memory: same model."""

import time

from deai.node.launch.inprocess import LocalNetwork
from deai.node.launch.processes import ProcessNetwork
from deai.node.user.submit import submit_task


def wait_task(client, task, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.call("task.status", {"task": task})
        if status["phase"] in ("done", "failed"):
            return status
        time.sleep(0.2)
    raise TimeoutError(f"task still {status['phase']} in round {status['round']}")


def run_in_memory(tmp_path, parties, bundle):
    net = LocalNetwork(tmp_path / "mem")
    net.fund(parties.everyone(net.hub_account), 100_000)
    net.add_daemon("data", {"data_provider": parties.providers}, options={"datasets": parties.datasets})
    net.add_daemon("compute", {"compute_provider": parties.computes})
    task = net.submit(parties.creator, bundle)
    net.run(net.task_done(task))
    return net.status(task)


def test_task_over_http_matches_memory(tmp_path, parties):
    bundle = parties.bundle(rounds=2)
    with ProcessNetwork(tmp_path / "http") as net:
        net.start_hub()
        net.fund(parties.everyone(net.hub_account), 100_000)
        net.start_node("data", ["data_provider"], [parties.provider_spec], data=parties.datasets)
        net.start_node("compute", ["compute_provider"], [parties.compute_spec])
        client = net.client(parties.creator)
        task = submit_task(client, parties.creator, bundle)
        status = wait_task(client, task)
        assert status["phase"] == "done", status["reason"]
        assert client.query("checkpoint", task_id=task, round=2) == "0x" + status["history"][-1]["checkpoint"]
        supply = client.query("supply")
        assert supply["task_escrow"] == 0 and supply["job_escrow"] == 0
        model = client.query("model", model_id=status["model"])
        assert model.task == task
    memory = run_in_memory(tmp_path, parties, bundle)
    assert [h.checkpoint for h in memory.history] == [h["checkpoint"] for h in status["history"]]
