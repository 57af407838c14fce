"""The CLI: task status/watch against a served hub, and `deai up` launching and stopping a network."""

import os
import subprocess
import sys
import textwrap

import pytest
from typer.testing import CliRunner

from deai.cli.task import app as task_app
from deai.net.http import ServerThread, make_app
from deai.node.launch.inprocess import LocalNetwork

runner = CliRunner()


def test_task_status_and_watch_over_http(tmp_path, parties):
    net = LocalNetwork(tmp_path / "mem")
    net.fund(parties.everyone(net.hub_account), 100_000)
    net.add_daemon("data", {"data_provider": parties.providers}, options={"datasets": parties.datasets})
    net.add_daemon("compute", {"compute_provider": parties.computes})
    task = net.submit(parties.creator, parties.bundle(rounds=2))
    net.run(net.task_done(task))
    with ServerThread(make_app(net.hub.endpoint)) as server:
        result = runner.invoke(task_app, ["status", task, "--hub", server.url])
        assert result.exit_code == 0, result.output
        assert "done" in result.output and "round 2/2" in result.output
        result = runner.invoke(task_app, ["watch", task, "--hub", server.url])
        assert result.exit_code == 0, result.output
        result = runner.invoke(task_app, ["status", "0x" + "00" * 32, "--hub", server.url])
        assert result.exit_code != 0 and "no task" in str(result.exception)


@pytest.mark.slow
@pytest.mark.parametrize("ledger", ["sqlite", pytest.param("evm", marks=pytest.mark.slow)])
def test_deai_up_runs_a_scenario_and_stops_cleanly(tmp_path, ledger):
    if ledger == "evm":
        from deai.ledger.evm.node import ANVIL_INSTALL, find_anvil

        if find_anvil() is None:
            if os.environ.get("CI"):
                pytest.fail(f"anvil is missing on CI; {ANVIL_INSTALL}")
            pytest.skip(f"anvil is not installed; {ANVIL_INSTALL}")
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(
        textwrap.dedent(
            """
            seed: 3
            name: tiny
            dataset: {name: digits}
            partition: {kind: iid}
            model: {name: logreg}
            network: {data_providers: 3, compute_providers: 3, hosts: 0, transport: http}
            task: {rounds: 2, local_epochs: 1, lr: 0.1, batch_size: 32, aggregator: mean,
                   verification: {redundancy: 3, sample_rate: 0.1}, budget: 10000}
            """
        )
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "deai.cli.up",
            str(scenario),
            "--dir",
            str(tmp_path / "net"),
            "--ledger",
            ledger,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "stopping the network" in proc.stdout
    # every child process is gone: the hub's port is closed and no daemon is left writing logs
    url = (tmp_path / "net" / "hub" / "hub.url").read_text()
    import httpx

    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{url}/v1/health", timeout=2)
    if ledger == "evm":  # the chain it started is stopped too, its state kept for a restart
        chain = next(line.split()[2] for line in proc.stdout.splitlines() if line.startswith("chain "))
        with pytest.raises(httpx.HTTPError):
            httpx.post(chain, json={"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber"}, timeout=2)
        assert (tmp_path / "net" / "chain" / "state.json").is_file()
