"""The whole network over anvil, with real processes on loopback: the ledger is the contract, the
hub only relays, and every daemon and client here reads the ledger from the chain (slow).

A two-round task trains while the hub is killed (SIGKILL) and restarted and anvil is stopped and
restarted on its dumped state; a second hub on the same chain relays for a participant who
switches to it; then paid, verified inference runs on the trained model with a lying host
slashed. Afterwards the contract's state is replayed from its logs (``verify``) and conserves value.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import torch

from deai.core.accounts import Account
from deai.ledger.config import HOST
from deai.ledger.evm.node import ANVIL_INSTALL, find_anvil
from deai.ledger.txs import Transfer
from deai.node.launch.processes import ProcessNetwork
from deai.node.launch.serve import hub_client, spawn_hub, wait_for_url
from deai.node.participant.host import ensure_hosts
from deai.node.user.infer import request_inference
from deai.node.user.submit import submit_task
from deai.protocol.task.model import load_checkpoint
from deai.protocol.task.spec import Windows

pytestmark = pytest.mark.slow
SMALL = os.environ.get("DEAI_SMALL") == "1"
# long windows: a phase closes as soon as everyone delivered, so they only cost time while the hub
# or the chain is down (the daemons' HTTP clients back off meanwhile)
WINDOWS = Windows(join_ms=60_000, train_ms=40_000, commit_ms=20_000, reveal_ms=20_000)


def wait_for(client, task, predicate, timeout=300):
    deadline, status = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            status = client.call("task.status", {"task": task})
        except Exception:  # the hub or the chain may be down
            time.sleep(0.3)
            continue
        if predicate(status):
            return status
        time.sleep(0.1)
    raise TimeoutError(f"condition not reached; last status {status}")


@pytest.fixture
def anvil():
    if find_anvil() is None:
        if os.environ.get("CI"):
            pytest.fail(f"anvil is missing on CI; {ANVIL_INSTALL}")
        pytest.skip(f"anvil is not installed; {ANVIL_INSTALL}")


@pytest.mark.timeout(900)
def test_a_task_and_paid_inference_on_anvil_through_hub_and_chain_restarts(tmp_path, parties, anvil):
    net = ProcessNetwork(tmp_path / "net", ledger="evm")
    second = None
    try:
        assert net.chain is not None and net.anvil is not None
        net.start_hub()
        hosts = [Account.from_seed("evmh", i) for i in range(3)]
        user = Account.from_seed("evmuser", 0)
        net.fund([*parties.everyone(net.hub_account), user.address, *[h.address for h in hosts]], 200_000)
        net.start_node("data", ["data_provider"], [parties.provider_spec], data=parties.datasets)
        net.start_node("compute", ["compute_provider"], [parties.compute_spec])
        client = net.client(parties.creator)
        assert client.chain is not None  # this client reads the chain, not the hub
        rounds = 2
        bundle = parties.bundle(rounds=rounds, windows=WINDOWS)
        task = submit_task(client, parties.creator, bundle)

        wait_for(client, task, lambda s: len(s["history"]) >= 1)
        net.kill("hub")  # SIGKILL mid-task: its coordinator state is in hub.kv, the ledger on the chain
        net.restart("hub")
        net.restart("chain")  # anvil dumps its state on SIGINT and loads it again
        status = wait_for(client, task, lambda s: s["phase"] in ("done", "failed"))
        assert status["phase"] == "done", status["reason"]
        assert [h["round"] for h in status["history"]] == list(range(1, rounds + 1))
        model_id = status["model"]

        # a second hub relays for the same chain: a participant switches to it mid-network
        hub2 = tmp_path / "hub2"
        second = spawn_hub(hub2, "seed:evm-second-hub:0", genesis=net.genesis_path, chain=net.chain)
        other = hub_client(wait_for_url(hub2, second), parties.creator, chain=net.chain)
        before = client.query("balance", address=user.address)
        other.send_tx(parties.creator, Transfer(to=user.address, amount=7))
        client.chain.refresh()  # another client's write: this view may lag it by up to MAX_LAG_S
        assert client.query("balance", address=user.address) == before + 7  # seen through the first hub
        assert other.query("head") == client.query("head")
        # the CLI reads the chain too when told where it is ($DEAI_RPC, $DEAI_LEDGER_ADDRESS)
        env = {**os.environ, "DEAI_RPC": net.chain.rpc, "DEAI_LEDGER_ADDRESS": net.chain.address}
        shown = subprocess.run(
            [sys.executable, "-m", "deai.cli.main", "account", "show", "seed:evmuser:0", "--hub", net.url],
            capture_output=True, text=True, env=env, timeout=120, check=True,
        ).stdout  # fmt: skip
        assert f"{before + 7:,}" in shown or str(before + 7) in shown, shown

        # paid, verified inference on the trained model; the lying host is slashed
        ensure_hosts(net, hosts, tag="evm", behaviours={hosts[2].address: "wrong_answer"}, stake=50_000)
        net.wait_ready(model_id, timeout=240)
        uc = net.client(user)
        stakes = {h.address: uc.query("stake", address=h.address, role=HOST) for h in hosts}
        model = load_checkpoint(bundle.spec, client.get_blob(status["checkpoint"]))
        x = parties.splits.test.x[:8]
        answer = request_inference(uc, user, model_id, x, fee=10, r=3, p=1.0, timeout=120)
        with torch.no_grad():
            assert torch.equal(answer["labels"], model(x).argmax(dim=1))
        assert answer["faulted"] == [hosts[2].address]
        assert uc.query("stake", address=hosts[2].address, role=HOST) < stakes[hosts[2].address]
    finally:
        if second is not None:
            second.terminate()
            second.wait(30)
        net.stop(keep_chain=True)
    try:
        ledger = net.ledger()
        report = ledger.verify()
        assert report.ok, report.problem
        supply = ledger.check_invariants()
        assert supply["task_escrow"] == 0
        kinds = [e.kind for e in ledger.events()]
        assert kinds.count("payout_posted") == rounds  # nothing paid twice across the restarts
        assert kinds.count("model_registered") == 1 and "slashed" in kinds
    finally:
        net.stop_chain()
