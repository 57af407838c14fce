"""Faults with real processes on loopback, killed by PID with SIGKILL mid-task.

Each test checks that the task completes and that the ledger conserves value (replayed from its
file afterwards). They are slow-marked; ``DEAI_SMALL=1`` runs them in their small form in CI.
"""

import os
import signal
import time

import pytest

from deai.ledger.sqlite import SqliteLedger
from deai.ledger.txs import Stake
from deai.node.launch.processes import ProcessNetwork
from deai.node.user.submit import submit_task
from deai.protocol.task.spec import Windows

pytestmark = pytest.mark.slow
SMALL = os.environ.get("DEAI_SMALL") == "1"

FAST = Windows(join_ms=60_000, train_ms=4_000, commit_ms=3_000, reveal_ms=3_000, secagg_ms=3_000)
# secure aggregation with one process per provider: on a loaded 2-core CI machine a phase's answers
# took over 3 s (every bucket aborted, "kept 0 providers"); a phase closes as soon as every live
# provider answered, so the longer windows only cost time in the phase the killed provider misses
SECAGG = Windows(join_ms=60_000, train_ms=20_000, commit_ms=5_000, reveal_ms=5_000, secagg_ms=12_000)


def wait_for(client, task, predicate, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status = client.call("task.status", {"task": task})
        except Exception:  # the hub may be down in a fault test
            time.sleep(0.2)
            continue
        if predicate(status):
            return status
        time.sleep(0.05)
    raise TimeoutError(f"condition not reached; last status {status['phase']} round {status['round']}")


def finished(s):
    return s["phase"] in ("done", "failed")


def audit(net):
    """Replay the hub's ledger file: hash chain, signatures, state root, conservation."""
    net.stop()
    with SqliteLedger(net.hub_dir / "ledger.sqlite") as ledger:
        assert ledger.verify().ok
        return ledger.check_invariants(), ledger


def start(tmp_path, parties, *, providers="one", computes="one"):
    net = ProcessNetwork(tmp_path / "net")
    net.start_hub()
    net.fund(parties.everyone(net.hub_account), 100_000)
    if providers == "one":
        net.start_node("data", ["data_provider"], [parties.provider_spec], data=parties.datasets)
    else:
        for i, p in enumerate(parties.providers):
            net.start_node(
                f"data{i}",
                ["data_provider"],
                [f"seed:{parties.tag}p:{i}"],
                data={p.address: parties.datasets[p.address]},
            )
    if computes == "one":
        net.start_node("compute", ["compute_provider"], [parties.compute_spec])
    else:
        for i in range(parties.m):
            net.start_node(f"compute{i}", ["compute_provider"], [f"seed:{parties.tag}c:{i}"])
    return net


def test_killed_compute_node_is_redrawn(tmp_path, parties):
    net = start(tmp_path, parties, computes="each")
    try:
        client = net.client(parties.creator)
        # all compute providers staked (their daemons did it); freeze them so the drawn one dies before acting
        deadline = time.monotonic() + 60
        while any(
            client.query("stake", address=c.address, role="compute_provider") == 0 for c in parties.computes
        ):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        for i in range(parties.m):
            net.nodes[f"compute{i}"].proc.send_signal(signal.SIGSTOP)
        task = submit_task(
            client, parties.creator, parties.bundle(rounds=1, redundancy=1, sample_rate=0.0, windows=FAST)
        )
        since, victim = 0, None
        while victim is None:
            events, since = client.events(since)
            for e in events:
                if e["kind"] == "job_registered" and e["data"]["task"] == task:
                    victim, first_job = e["data"]["executors"][0], e["data"]["job"]
                    break
            time.sleep(0.02)
        index = [c.address for c in parties.computes].index(victim)
        net.kill(f"compute{index}")  # SIGKILL by PID, mid-job: drawn, never committed
        for i in range(parties.m):
            if i != index:
                net.nodes[f"compute{i}"].proc.send_signal(signal.SIGCONT)
        status = wait_for(client, task, lambda s: finished(s) and not s.get("stale"))
        assert status["phase"] == "done", status["reason"]
        # wait until the failed attempt was resolved after the grace: the dead executor was drawn
        # but never committed, so it is reported missed and keeps its stake (issue 12, finding 11)
        deadline = time.monotonic() + 60
        while client.query("job", job_id=first_job).status == "open":
            assert time.monotonic() < deadline, "the failed attempt was never resolved"
            time.sleep(0.2)
        assert victim in client.query("job", job_id=first_job).missed
        assert client.query("stake", address=victim, role="compute_provider") == 1000
        assert status["jobs"]["aggregate"]["attempts"] >= 2 or status["jobs"]["score"]["attempts"] >= 2
    finally:
        supply, _ = audit(net)
    assert supply["task_escrow"] == 0


def test_provider_drops_and_secure_aggregation_recovers(tmp_path, parties):
    net = start(tmp_path, parties, providers="each")
    try:
        client = net.client(parties.creator)
        bundle = parties.bundle(rounds=1, secure_aggregation=True, bucket_size=parties.n, windows=SECAGG)
        task = submit_task(client, parties.creator, bundle)
        view = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            view = client.call("task.round", {"task": task})
            if view.get("secagg", {}).get("phase") in ("share", "masked"):
                break
            time.sleep(0.02)
        net.kill("data0")  # keys advertised, then the process dies
        status = wait_for(client, task, finished)
        assert status["phase"] == "done", status["reason"]
        contributors = status["history"][0]["contributors"]
        assert parties.providers[0].address not in contributors
        assert len(contributors) == parties.n - 1
    finally:
        supply, _ = audit(net)
    assert supply["task_escrow"] == 0


def test_hub_killed_and_restarted_resumes_the_task(tmp_path, parties):
    rounds = 2 if SMALL else 3
    net = start(tmp_path, parties)
    try:
        client = net.client(parties.creator)
        # a training window long enough for providers to find the restarted hub (their HTTP client
        # backs off while it is down); the round does not wait for it when everyone delivers
        windows = Windows(join_ms=60_000, train_ms=20_000, commit_ms=10_000, reveal_ms=10_000)
        task = submit_task(client, parties.creator, parties.bundle(rounds=rounds, windows=windows))
        wait_for(client, task, lambda s: len(s["history"]) >= 1)
        net.kill("hub")  # SIGKILL mid-task
        net.restart("hub")
        status = wait_for(client, task, finished)
        assert status["phase"] == "done", status["reason"]
        assert [h["round"] for h in status["history"]] == list(range(1, rounds + 1))
    finally:
        supply, ledger = audit(net)
    with SqliteLedger(net.hub_dir / "ledger.sqlite") as ledger:
        kinds = [e.kind for e in ledger.events()]
        assert kinds.count("payout_posted") == rounds  # nothing paid twice
        assert kinds.count("checkpoint") == rounds and kinds.count("model_registered") == 1
    assert supply["task_escrow"] == 0


def test_restarted_participants_resume_from_disk(tmp_path, parties):
    net = start(tmp_path, parties)
    try:
        client = net.client(parties.creator)
        windows = Windows(join_ms=60_000, train_ms=30_000, commit_ms=15_000, reveal_ms=15_000)
        task = submit_task(client, parties.creator, parties.bundle(rounds=2, windows=windows))
        wait_for(client, task, lambda s: len(s["history"]) >= 1)
        net.kill("data")
        net.kill("compute")
        net.restart("data")
        net.restart("compute")
        status = wait_for(client, task, finished)
        assert status["phase"] == "done", status["reason"]
        # the restarted provider daemon remembered it had joined and trained in round 2
        assert len(status["history"][1]["contributors"]) == parties.n
        deadline = time.monotonic() + 30
        while client.query("member", task_id=task, address=parties.providers[0].address) is not None:
            assert time.monotonic() < deadline, "providers did not take their task stake back"
            time.sleep(0.2)
        # every daemon claims its own payouts once it sees the task over (the compute daemon on its
        # next idle poll): wait for all of them rather than race the last claim
        while client.query("supply")["unclaimed_payouts"]:
            assert time.monotonic() < deadline, "some payouts were never claimed"
            time.sleep(0.2)
    finally:
        supply, _ = audit(net)
    assert supply["unclaimed_payouts"] == 0


def test_stake_helper_is_idempotent(tmp_path, parties):
    """A restarted node re-runs its setup: staking tops up only what is missing."""
    net = ProcessNetwork(tmp_path / "n")
    try:
        net.start_hub()
        net.fund([parties.computes[0].address], 10_000)
        client = net.client(parties.computes[0])
        from deai.node.participant.staking import ensure_stake

        ensure_stake(client, [parties.computes[0]], "compute_provider", 1500)
        ensure_stake(client, [parties.computes[0]], "compute_provider", 1500)
        assert client.query("stake", address=parties.computes[0].address, role="compute_provider") == 1500
        assert client.query("balance", address=parties.computes[0].address) == 8500
        client.submit([(parties.computes[0], Stake(role="compute_provider", amount=1))])
    finally:
        net.stop()
