"""Conformance: verified jobs -- draw, commit-reveal, hidden sampling, resolution and slashing."""

from __future__ import annotations

import pytest

from deai.core.encoding import hash_value
from deai.ledger import (
    COMPUTE,
    draw_executors,
    errors,
    payout_tree,
    replication_commitment,
    result_commitment,
    txs,
)
from deai.ledger.draw import draw_seed

STAKE = 10_000
FEE = 100
GOOD, BAD, OTHER = hash_value("good"), hash_value("bad"), hash_value("other")


@pytest.fixture
def jnet(net):
    net.fund(net.accounts[1], 100_000)
    for p in net.accounts[2:8]:
        net.staked(p, COMPUTE, STAKE)
    return net


class Job:
    """Drive one job through the ledger like protocol code would."""

    def __init__(self, net, label, *, replicated=True, primary=0, executors=3, fee=FEE, **extra):
        self.net, self.id, self.replicated, self.primary = net, hash_value(label), replicated, primary
        self.creator = net.accounts[1]
        self.salt = hash_value(label + "-salt")
        self.head_before = net.ledger.head().hash
        self.receipt = net.send(
            self.creator,
            txs.RegisterJob(
                job=self.id,
                task=extra.pop("task", None),
                job_type="aggregate",
                inputs=(hash_value("in1"), hash_value("in2")),
                fee=fee,
                executors=executors,
                replication=replication_commitment(self.id, replicated, primary, self.salt),
                commit_window_ms=1_000,
                reveal_window_ms=1_000,
                **extra,
            ),
        )
        by_address = {a.address: a for a in net.accounts}
        self.executors = [by_address[a] for a in net.ledger.job(self.id).executors]

    def commit(self, executor, digest):
        salt = hash_value(f"{self.id}{executor.address}")
        self.net.send(
            executor,
            txs.Commit(job=self.id, commitment=result_commitment(self.id, executor.address, digest, salt)),
        )
        return salt

    def run(self, digests):
        """Commit then reveal ``digests`` (None: silent) for the executors in order."""
        salts = [
            self.commit(e, d) if d is not None else None for e, d in zip(self.executors, digests, strict=True)
        ]
        if any(d is None for d in digests):
            self.net.clock.advance(1_000)
        for e, d, s in zip(self.executors, digests, salts, strict=True):
            if d is not None:
                self.net.send(e, txs.Reveal(job=self.id, digest=d, salt=s))

    def reveal_replication(self):
        return self.net.send(
            self.creator,
            txs.RevealReplication(
                job=self.id, replicated=self.replicated, primary=self.primary, salt=self.salt
            ),
        )

    def resolve(self, sender=None):
        return (
            self.net.send(sender or self.net.accounts[9], txs.ResolveJob(job=self.id))
            .event("job_resolved")
            .data
        )


def test_draw_is_recomputable_distinct_and_excludes_creator(jnet):
    ledger = jnet.ledger
    jnet.staked(jnet.accounts[1], COMPUTE, STAKE)  # the creator is staked too, but never drawn
    for i in range(8):
        job = Job(jnet, f"draw-{i}", executors=4)
        addresses = [e.address for e in job.executors]
        assert len(set(addresses)) == 4 and jnet.accounts[1].address not in addresses
        candidates = [
            (a, w) for a, w in ledger.eligible_executors(COMPUTE, FEE) if a != jnet.accounts[1].address
        ]
        expected = draw_executors(candidates, draw_seed(job.head_before, job.id), 4)
        assert addresses == expected == list(ledger.job(job.id).executors)
        assert job.receipt.event("job_registered").data["executors"] == addresses
        for a in addresses:  # being drawn binds nobody: a stake is locked only by a commit
            assert ledger.locked(a, COMPUTE) == 0


def test_replicated_majority_pays_winners_and_slashes_the_cheater(jnet):
    ledger = jnet.ledger
    job = Job(jnet, "rep")
    honest1, honest2, cheat = job.executors
    creator_before = ledger.balance(job.creator.address)
    with pytest.raises(errors.JobNotResolvable):
        job.resolve()
    job.run([GOOD, GOOD, BAD])
    job.reveal_replication()
    result = job.resolve()
    assert result["status"] == "accepted" and result["digest"] == GOOD
    assert result["accepted"] == [honest1.address, honest2.address] and result["faulted"] == [cheat.address]
    slashed = STAKE * 5_000 // 10_000
    reward = slashed * 5_000 // 10_000 // 2
    assert ledger.stake(cheat.address, COMPUTE) == STAKE - slashed
    for w in (honest1, honest2):
        assert ledger.balance(w.address) == FEE + reward
        assert ledger.reputation(w.address, COMPUTE) == 1 and ledger.locked(w.address, COMPUTE) == 0
    assert ledger.reputation(cheat.address, COMPUTE) == -5
    assert ledger.balance(job.creator.address) == creator_before + FEE  # the cheater's fee comes back
    assert ledger.supply()["burned"] == slashed - 2 * reward and ledger.supply()["job_escrow"] == 0
    assert ledger.job(job.id).status == "accepted"
    kinds = [e.kind for e in ledger.events(since=0)]
    assert kinds[-2:] == ["slashed", "job_resolved"]
    with pytest.raises(errors.JobNotResolvable):
        job.resolve()
    ledger.check_invariants()
    assert ledger.verify().ok


def test_unreplicated_only_the_primary_counts(jnet):
    ledger = jnet.ledger
    job = Job(jnet, "solo", replicated=False, primary=1)
    primary = job.executors[1]
    salt = job.commit(primary, GOOD)
    with pytest.raises(errors.RevealTooEarly):  # others might still commit
        jnet.send(primary, txs.Reveal(job=job.id, digest=GOOD, salt=salt))
    with pytest.raises(errors.RevealTooEarly):
        job.reveal_replication()
    jnet.clock.advance(1_000)
    jnet.send(primary, txs.Reveal(job=job.id, digest=GOOD, salt=salt))
    job.reveal_replication()
    result = job.resolve()
    assert result["accepted"] == [primary.address] and result["faulted"] == [] and result["refund"] == 2 * FEE
    for e in (job.executors[0], job.executors[2]):
        assert ledger.stake(e.address, COMPUTE) == STAKE and ledger.locked(e.address, COMPUTE) == 0


def test_primary_that_never_committed_is_missed_not_slashed(jnet):
    """Drawn but never committed: a liveness fault (``missed``), not a slash (issue 12, finding 1)."""
    ledger = jnet.ledger
    job = Job(jnet, "silent", replicated=False, primary=0)
    jnet.clock.advance(1_000)
    job.reveal_replication()
    with pytest.raises(errors.JobNotResolvable):
        job.resolve()
    jnet.clock.advance(1_000)
    result = job.resolve()
    assert result["status"] == "failed" and result["faulted"] == []
    assert result["missed"] == [job.executors[0].address]
    assert result["refund"] == 3 * FEE and ledger.stake(job.executors[0].address, COMPUTE) == STAKE
    assert ledger.reputation(job.executors[0].address, COMPUTE) == 0


def test_committed_primary_that_withholds_its_reveal_is_slashed(jnet):
    ledger = jnet.ledger
    job = Job(jnet, "withheld", replicated=False, primary=0)
    job.commit(job.executors[0], GOOD)
    assert ledger.locked(job.executors[0].address, COMPUTE) == 1
    jnet.clock.advance(1_000)
    job.reveal_replication()
    jnet.clock.advance(1_000)
    result = job.resolve()
    assert result["status"] == "failed" and result["faulted"] == [job.executors[0].address]
    assert result["refund"] == 3 * FEE and ledger.stake(job.executors[0].address, COMPUTE) == STAKE // 2
    slashed = [e.data for e in ledger.events(since=0) if e.kind == "slashed"]
    assert slashed[-1]["reason"] == "withheld reveal"
    assert ledger.locked(job.executors[0].address, COMPUTE) == 0


def test_copycat_and_late_executors(jnet):
    ledger = jnet.ledger
    job = Job(jnet, "copy")
    honest, copycat, late = job.executors
    honest_commit = result_commitment(job.id, honest.address, GOOD, hash_value("s"))
    jnet.send(honest, txs.Commit(job=job.id, commitment=honest_commit))
    # the copycat replays the honest commitment; it cannot open it as its own
    jnet.send(copycat, txs.Commit(job=job.id, commitment=honest_commit))
    with pytest.raises(errors.DuplicateCommit):
        jnet.send(copycat, txs.Commit(job=job.id, commitment=honest_commit))
    with pytest.raises(errors.NotAnExecutor):
        jnet.send(jnet.accounts[9], txs.Commit(job=job.id, commitment=honest_commit))
    jnet.clock.advance(1_000)
    with pytest.raises(errors.CommitAfterDeadline):
        jnet.send(late, txs.Commit(job=job.id, commitment=honest_commit))
    with pytest.raises(errors.RevealWithoutCommit):
        jnet.send(late, txs.Reveal(job=job.id, digest=GOOD, salt=hash_value("s")))
    jnet.send(honest, txs.Reveal(job=job.id, digest=GOOD, salt=hash_value("s")))
    with pytest.raises(errors.DuplicateReveal):
        jnet.send(honest, txs.Reveal(job=job.id, digest=GOOD, salt=hash_value("s")))
    with pytest.raises(errors.CommitmentMismatch):
        jnet.send(copycat, txs.Reveal(job=job.id, digest=GOOD, salt=hash_value("s")))
    job.reveal_replication()
    jnet.clock.advance(1_000)
    with pytest.raises(errors.RevealAfterDeadline):
        jnet.send(copycat, txs.Reveal(job=job.id, digest=GOOD, salt=hash_value("s")))
    result = job.resolve()
    # one of three revealed: no majority; the copycat committed and never revealed (a fault), the
    # late executor never committed (missed, not slashed)
    assert result["status"] == "no_majority" and result["faulted"] == [copycat.address]
    assert result["missed"] == [late.address] and ledger.stake(late.address, COMPUTE) == STAKE
    assert ledger.stake(honest.address, COMPUTE) == STAKE and result["refund"] == 3 * FEE


def test_no_majority_refunds_without_slashing_revealers(jnet):
    job = Job(jnet, "split")
    job.run([GOOD, BAD, OTHER])
    job.reveal_replication()
    result = job.resolve()
    assert result["status"] == "no_majority" and result["faulted"] == [] and result["refund"] == 3 * FEE
    assert all(jnet.ledger.stake(e.address, COMPUTE) == STAKE for e in job.executors)


def test_creator_that_never_reveals_forfeits(jnet):
    job = Job(jnet, "abandon")
    job.run([GOOD, BAD, GOOD])
    with pytest.raises(errors.JobNotResolvable):
        job.resolve()
    jnet.clock.advance(2_000)
    with pytest.raises(errors.RevealAfterDeadline):
        job.reveal_replication()
    result = job.resolve()
    assert result["status"] == "abandoned" and len(result["accepted"]) == 3 and result["faulted"] == []
    assert all(jnet.ledger.balance(e.address) == FEE for e in job.executors)


def test_replication_reveal_must_match(jnet):
    job = Job(jnet, "mismatch")
    job.run([GOOD, GOOD, GOOD])
    with pytest.raises(errors.NotAuthorized):
        jnet.send(
            job.executors[0], txs.RevealReplication(job=job.id, replicated=True, primary=0, salt=job.salt)
        )
    with pytest.raises(errors.ReplicationMismatch):
        jnet.send(job.creator, txs.RevealReplication(job=job.id, replicated=False, primary=0, salt=job.salt))
    with pytest.raises(errors.ReplicationMismatch):
        jnet.send(job.creator, txs.RevealReplication(job=job.id, replicated=True, primary=7, salt=job.salt))
    job.reveal_replication()
    with pytest.raises(errors.DuplicateReveal):
        job.reveal_replication()
    assert job.resolve()["status"] == "accepted"


def test_tolerance_resolution_by_resolver(jnet):
    resolver = jnet.accounts[10]
    job = Job(jnet, "tol", resolver=resolver.address)
    job.run([GOOD, OTHER, BAD])  # honest outputs within tolerance but with different digests
    job.reveal_replication()
    with pytest.raises(errors.NotAuthorized):
        job.resolve()
    with pytest.raises(errors.NotAuthorized):
        jnet.send(jnet.accounts[9], txs.AcceptResult(job=job.id, accepted=(job.executors[0].address,)))
    with pytest.raises(errors.BadAcceptance):
        jnet.send(
            resolver,
            txs.AcceptResult(job=job.id, accepted=(job.executors[0].address, jnet.accounts[9].address)),
        )
    accepted = (job.executors[0].address, job.executors[1].address)
    r = jnet.send(resolver, txs.AcceptResult(job=job.id, accepted=accepted)).event("job_resolved").data
    assert (
        r["accepted"] == list(accepted) and r["faulted"] == [job.executors[2].address] and r["digest"] is None
    )


def test_a_minority_acceptance_pays_without_faulting_anyone(jnet):
    """One of three is below the strict-majority quorum: the resolver may pay it (vindicating an
    honest minority outvoted in this attempt) but cannot fault the others."""
    resolver = jnet.accounts[10]
    job = Job(jnet, "tol-minority", resolver=resolver.address)
    job.run([GOOD, OTHER, OTHER])
    job.reveal_replication()
    first = job.executors[0].address
    r = jnet.send(resolver, txs.AcceptResult(job=job.id, accepted=(first,))).event("job_resolved").data
    assert r["accepted"] == [first] and r["faulted"] == [] and r["refund"] == 2 * FEE
    assert all(jnet.ledger.stake(e.address, COMPUTE) == STAKE for e in job.executors)


def test_silent_resolver_falls_back_to_exact_majority(jnet):
    job = Job(jnet, "tol2", resolver=jnet.accounts[10].address)
    job.run([GOOD, GOOD, BAD])
    job.reveal_replication()
    jnet.clock.advance(2_000 + 5_000)
    assert job.resolve()["status"] == "accepted"


def test_locked_stake_and_eligibility(jnet, make_config, ledger_factory):
    job = Job(jnet, "lock")
    e = job.executors[0]
    job.commit(e, GOOD)  # the commit, not the draw, locks the stake
    with pytest.raises(errors.StakeLocked):
        jnet.send(e, txs.Unstake(role=COMPUTE, amount=STAKE))
    job.run([None, GOOD, GOOD])
    jnet.send(e, txs.Reveal(job=job.id, digest=GOOD, salt=hash_value(f"{job.id}{e.address}")))
    job.reveal_replication()
    job.resolve()
    jnet.send(e, txs.Unstake(role=COMPUTE, amount=STAKE))
    # six staked, one left: at most five can be drawn
    with pytest.raises(errors.NotEnoughExecutors):
        Job(jnet, "big", executors=6)
    # a fee above the stake-to-fee rule excludes everyone (ratio 1: stake must cover the fee)
    with pytest.raises(errors.NotEnoughExecutors, match="requires"):
        Job(jnet, "rich", fee=STAKE + 1, executors=1)
    with pytest.raises(errors.JobError):
        Job(jnet, "too-many", executors=65)
    with pytest.raises(errors.DuplicateEntity):
        Job(jnet, "lock")


def test_payout_root_bound_to_a_verified_job(jnet):
    from deai.ledger import DATA

    creator = jnet.accounts[1]
    task = hash_value("settled-task")
    jnet.send(creator, txs.CreateTask(task=task, budget=5_000, params=hash_value("p")))
    members = jnet.accounts[8:10]
    tree = payout_tree({m.address: 1_000 for m in members})
    job = Job(jnet, "settle", task=task)
    job.run([tree.root, tree.root, BAD])
    job.reveal_replication()
    job.resolve()
    with pytest.raises(errors.JobError):
        jnet.send(creator, txs.PostPayoutRoot(task=task, epoch=0, root=BAD, total=2_000, job=job.id))
    jnet.send(creator, txs.PostPayoutRoot(task=task, epoch=0, root=tree.root, total=2_000, job=job.id))
    for m in members:
        jnet.send(m, txs.ClaimPayout(task=task, epoch=0, amount=1_000, proof=tuple(tree.proof(m.address))))
    assert jnet.ledger.balance(members[0].address) == 1_000
    assert DATA  # imported role constant in use elsewhere
    jnet.ledger.check_invariants()
