"""Failures inside the lifecycle: a dead executor, a provider that drops out of secure aggregation,
a coordinator that restarts from its saved state."""

import json

from deai.node.hub.server import Hub


def test_dead_primary_executor_is_redrawn_and_slashed_only_if_it_had_committed(small_net):
    """The job is redrawn. A primary that dies after committing withheld its reveal and is slashed;
    one that dies before committing never accepted the job (issue 12): it is reported ``missed``
    and keeps its stake."""
    net = small_net(m=5)
    ledger = net.net.ledger
    compute = net.compute_daemon.roles["compute_provider"]
    killed, dead_jobs = [], []

    def kill_first_primary():
        if killed:
            return
        for coord in net.net.hub.coordinators.values():
            run = coord.jobs.get("aggregate")
            if run is not None and run.attempts and (job := ledger.job(run.attempts[0].job)) is not None:
                victim = job.executors[0]  # r = 1: the only drawn executor is the primary
                compute.agents.pop(victim)  # its process died: it never commits
                killed.append(victim)
                dead_jobs.append(run.attempts[0].job)

    stake0 = {c.address: ledger.stake(c.address, "compute_provider") for c in net.computes}
    task, status = net.run(net.bundle(rounds=1, redundancy=1, sample_rate=0.0), on_step=kill_first_primary)
    assert status.phase == "done" and killed
    coord = net.net.hub.coordinators[task]
    assert coord.state.stale == []  # the failed attempt was resolved on the ledger after the grace
    first = ledger.job(json.loads(json.dumps(coord.state.rounds[0].to_json()))["aggregate_job"])
    assert killed[0] not in first.accepted
    dead = ledger.job(dead_jobs[0])
    if ledger.commitment(dead_jobs[0], killed[0]) is not None:  # it committed before it died
        assert killed[0] in dead.faulted
        assert ledger.stake(killed[0], "compute_provider") < stake0[killed[0]]
    else:
        assert killed[0] in dead.missed
        assert ledger.stake(killed[0], "compute_provider") == stake0[killed[0]]
    assert ledger.check_invariants()["job_escrow"] == 0


def test_secure_aggregation_recovers_from_a_dropout(small_net):
    net = small_net(n=6)
    pool_role = net.data_daemon.roles["data_provider"]
    dropped = net.providers[0].address
    original = pool_role._secagg

    def flaky(task, spec, view):  # provider 0 advertises its keys, then goes silent
        out = original(task, spec, view)
        if view.secagg["phase"] != "advertise":
            pool_role.accounts.pop(dropped, None)
        return out

    pool_role._secagg = flaky
    _task, status = net.run(net.bundle(rounds=1, secure_aggregation=True, bucket_size=6, max_providers=6))
    assert status.phase == "done", status.reason
    contributors = status.history[0].contributors
    assert dropped not in contributors and len(contributors) == 5


def test_coordinator_resumes_from_saved_state(small_net, tmp_path):
    """A hub rebuilt from its KV mid-task finishes with the same checkpoints as an uninterrupted run."""
    ref = small_net(seed=1)
    _, ref_status = ref.run(ref.bundle(rounds=2))
    net = small_net(seed=1)
    hub = net.net.hub
    task = net.net.submit(net.creator, net.bundle(rounds=2))

    def mid_jobs():
        c = hub.coordinators.get(task)
        return c is not None and c.state.phase == "jobs" and c.state.round == 2

    net.net.run(mid_jobs)
    restarted = Hub(hub.ledger, hub.store, hub.account, kv=hub.kv, clock=hub.clock)
    net.net.hub = restarted
    for t in net.net.transports:
        t.endpoint = restarted.endpoint
    net.net.run(net.net.task_done(task))
    status = net.net.status(task)
    assert [h.checkpoint for h in status.history] == [h.checkpoint for h in ref_status.history]
    assert hub.ledger.check_invariants()["unclaimed_payouts"] == 0
    # nothing was paid twice: one payout root per round
    assert [hub.ledger.payout(task, r).total for r in (1, 2)] == [h.payout for h in status.history]


def test_local_dp_reports_epsilon(small_net):
    net = small_net()
    dp = {"mode": "local", "clip": 1.0, "noise_multiplier": 0.5, "delta": 1e-5}
    _, status = net.run(net.bundle(rounds=2, dp=dp))
    assert status.phase == "done"
    eps = [h.epsilon for h in status.history]
    assert 0 < eps[0] < eps[1]


def test_central_dp_runs_as_a_verified_job(small_net):
    net = small_net()
    dp = {"mode": "central", "clip": 1.0, "noise_multiplier": 0.3, "delta": 1e-5}
    _task, status = net.run(net.bundle(rounds=1, dp=dp))
    assert status.phase == "done"
    job = net.net.ledger.job(status.history[0].aggregate_job)
    assert job.job_type == "dp_aggregate" and job.status == "accepted"
