"""Each phase of the job engine (:class:`~deai.protocol.jobs.run.JobRun`) on the memory ledger with
a manual clock: the executors are plain accounts whose commits and reveals the test sends itself,
so one phase can be checked without a network or the driver."""

from __future__ import annotations

import dataclasses

import torch
from jobs_helpers import STAKE

from deai.core.accounts import Account
from deai.core.blobs import BlobStore
from deai.core.tensorio import to_safetensors
from deai.ledger.base import ManualClock
from deai.ledger.config import COMPUTE, NetworkConfig
from deai.ledger.memory import MemoryLedger
from deai.ledger.records import JobRecord
from deai.ledger.txs import Commit, Mint, Reveal, Stake
from deai.protocol.jobs import JobRun, JobSpec
from deai.protocol.jobs.commit_reveal import commit_output
from deai.protocol.jobs.kinds import get_kind, load_inputs

WINDOW = 10_000


class World:
    def __init__(self, tmp_path, n: int = 5) -> None:
        minter = Account.from_seed("run-minter", 0)
        self.creator = Account.from_seed("run-creator", 0)
        self.clock = ManualClock(0)
        config = NetworkConfig(
            minter=minter.address, rep_step_bps=0, resolvers=(self.creator.address,), resolve_grace_ms=1_000
        )
        self.ledger = MemoryLedger(config, clock=self.clock)
        self.store = BlobStore(tmp_path / "blobs", fsync=False)
        self.ledger.send(minter, Mint(to=self.creator.address, amount=10**9))
        self.accounts = {}
        for i in range(n):
            a = Account.from_seed("run-exec", i)
            self.ledger.send(minter, Mint(to=a.address, amount=10 * STAKE))
            self.ledger.send(a, Stake(role=COMPUTE, amount=STAKE))
            self.accounts[a.address] = a
        g = torch.Generator().manual_seed(0)
        ups = tuple(self.store.put(to_safetensors({"delta": torch.randn(8, generator=g)})) for _ in range(3))
        self.spec = JobSpec("aggregate", ups, {"aggregator": "mean"}, seed=1)
        self.good = get_kind("aggregate").execute(load_inputs(self.store, self.spec), self.spec.params, 1)
        self.openings: dict[tuple[str, str], object] = {}

    def run(self, **kw) -> JobRun:
        return JobRun(self.spec, "test", commit_ms=WINDOW, reveal_ms=WINDOW, **{"p": 1.0, **kw})

    def step(self, run: JobRun) -> bool:
        return run.step(self.ledger, self.store, self.creator, self.clock.now)

    def job(self, run: JobRun) -> JobRecord:
        return self.ledger.job(run.current.job)

    def commit(self, run: JobRun, who: str, wrong: bool = False) -> None:
        job = run.current.job
        out = {"delta": self.good["delta"] + (1.0 if wrong else 0.0)}
        if wrong == "colluding":
            out = {"delta": self.good["delta"] - 1.0}
        opening = commit_output(job, who, self.store.put(to_safetensors(out)))
        self.openings[(job, who)] = opening
        self.ledger.send(self.accounts[who], Commit(job=job, commitment=opening.commitment))

    def reveal(self, run: JobRun, who: str) -> None:
        o = self.openings[(run.current.job, who)]
        self.ledger.send(self.accounts[who], Reveal(job=o.job, digest=o.digest, salt=o.salt))


def test_register_escrows_and_draws_then_waits_for_commits(tmp_path):
    w = World(tmp_path)
    run = w.run(r=3)
    before = w.ledger.balance(w.creator.address)
    assert w.step(run) and run.status == "running"
    job = w.job(run)
    assert len(job.executors) == 3 and job.resolver == w.creator.address and job.quorum == 0
    assert w.ledger.balance(w.creator.address) == before - 3 * run.fee
    assert w.store.get(run.current.job.removeprefix("0x"))  # the spec, for the executors
    assert not w.step(run)  # nobody committed, the window is open: nothing to do
    replay = w.run(r=3)
    replay.attempts = [dataclasses.replace(a) for a in run.attempts]
    w.step(replay)  # a replay after a crash does not register twice
    assert w.ledger.job(run.current.job).commits == 0


def test_choice_revealed_once_all_committed_or_at_the_deadline(tmp_path):
    w = World(tmp_path)
    run = w.run(r=3)
    w.step(run)
    first, *rest = w.job(run).executors
    w.commit(run, first)
    assert not w.step(run)
    for e in rest:
        w.commit(run, e)
    assert w.step(run) and w.job(run).replicated is True  # p = 1
    late = World(tmp_path / "late")
    run2 = late.run(r=3)
    late.step(run2)
    late.commit(run2, late.job(run2).executors[0])
    late.clock.now = late.job(run2).commit_deadline
    assert late.step(run2) and late.job(run2).replicated is not None


def test_decide_accepts_the_majority_and_slashes_the_wrong_committed_executor(tmp_path):
    w = World(tmp_path, n=3)  # nobody else to draw: a dispute cannot escalate
    run = w.run(r=3)
    w.step(run)
    a, b, c = w.job(run).executors
    w.commit(run, a)
    w.commit(run, b)
    w.commit(run, c, wrong=True)
    w.step(run)
    for e in (a, b):
        w.reveal(run, e)
    assert not w.step(run)  # c has not revealed and the window is open
    w.reveal(run, c)
    assert w.step(run) and run.status == "accepted" and not run.escalated
    assert sorted(run.accepted) == sorted([a, b]) and run.faulted == [c]
    assert run.output == w.openings[(run.current.job, a)].digest.removeprefix("0x")
    assert w.ledger.stake(c, COMPUTE) < STAKE and run.fees_paid() == 2 * run.fee
    w.ledger.check_invariants()


def test_a_silent_executor_is_decided_at_the_reveal_deadline(tmp_path):
    w = World(tmp_path, n=3)
    run = w.run(r=3)
    w.step(run)
    a, b, c = w.job(run).executors
    for e in (a, b, c):
        w.commit(run, e)
    w.step(run)
    w.reveal(run, a)
    w.reveal(run, b)
    assert not w.step(run)
    w.clock.now = w.job(run).reveal_deadline
    assert w.step(run) and run.status == "accepted" and run.faulted == [c]  # withheld reveal


def test_a_dispute_escalates_and_the_joint_decision_overturns_a_bloc(tmp_path):
    w = World(tmp_path, n=5)
    run = w.run(r=3)
    w.step(run)
    a, b, c = w.job(run).executors
    for e, bad in ((a, False), (b, "colluding"), (c, "colluding")):
        w.commit(run, e, wrong=bad)
    w.step(run)
    for e in (a, b, c):
        w.reveal(run, e)
    assert w.step(run) and run.escalated and run.status == "running"  # a bloc of 2 of 3: dispute
    first = run.attempts[0].job
    assert w.ledger.job(first).status == "open"  # decided only with the escalation
    w.step(run)
    job2 = w.job(run)
    assert job2.replicated is None and len(job2.executors) == 5
    for e in job2.executors:
        w.commit(run, e, wrong="colluding" if e in (b, c) else False)
    w.step(run)
    for e in job2.executors:
        w.reveal(run, e)
    assert w.step(run) and run.status == "accepted"
    assert set(run.faulted) == {b, c} and a in run.accepted
    one = w.ledger.job(first)
    assert one.accepted == (a,) and one.faulted == ()  # the honest minority paid, nobody faulted
    assert w.ledger.stake(a, COMPUTE) == STAKE and w.ledger.stake(b, COMPUTE) < STAKE
    w.ledger.check_invariants()


def test_no_majority_escalates_then_fails_and_stale_attempts_are_resolved(tmp_path):
    w = World(tmp_path, n=3)
    run = w.run(r=3, max_attempts=2, extra=0)
    for attempt in range(2):
        w.step(run)
        for e in w.job(run).executors:
            w.commit(run, e)
        w.step(run)
        w.clock.now = w.job(run).reveal_deadline  # everyone silent
        assert w.step(run)
        assert run.escalated == (attempt == 0) or run.status == "failed"
    assert run.status == "failed" and sorted(run.stale) == sorted(a.job for a in run.attempts)
    # the first attempt's grace period has passed, the second's has not
    assert run.resolve_stale(w.ledger, w.creator, w.clock.now) and run.stale == [run.attempts[1].job]
    assert not run.resolve_stale(w.ledger, w.creator, w.clock.now)
    w.clock.now += 1_000
    assert run.resolve_stale(w.ledger, w.creator, w.clock.now) and run.stale == []
    assert all(w.ledger.job(a.job).status != "open" for a in run.attempts)
    assert all(w.ledger.stake(e, COMPUTE) < STAKE for e in w.accounts)  # withheld reveals
    w.ledger.check_invariants()


def test_state_round_trips_through_json(tmp_path):
    w = World(tmp_path, n=3)
    run = w.run(r=3)
    w.step(run)
    back = JobRun.from_json(run.to_json())
    assert back.to_json() == run.to_json() and back.current == run.current
