"""Issue 12, findings 1, 4, 5, 10 (unstake after joining) and 11: the ledger's job, task and model
rules against an outsider who signs transactions with no funds, or with a little money and Sybils.

Every test drives the ledger through its public API (signed transactions via ``ledger.send``) on
both backends, and checks conservation of the supply afterwards.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from deai.core.accounts import Account
from deai.core.encoding import hash_value, sha256_hex
from deai.ledger import (
    COMPUTE,
    DATA,
    HOST,
    LedgerError,
    ManualClock,
    MemoryLedger,
    NetworkConfig,
    SqliteLedger,
    errors,
    model_id,
    replication_commitment,
    result_commitment,
    shares_tree,
    txs,
)

MINTER = Account.from_seed("adv-ledger", 0)
HUB = Account.from_seed("adv-ledger", 1)  # a network resolver (genesis ``resolvers``)
HONEST = [Account.from_seed("adv-ledger-honest", i) for i in range(4)]
ATTACKER = Account.from_seed("adv-ledger-attacker", 0)  # never funded
SYBIL = Account.from_seed("adv-ledger-attacker", 1)
STRANGER = Account.from_seed("adv-ledger-stranger", 0)  # funded, but nobody knows it
COORD = Account.from_seed("adv-ledger-coordinator", 0)
STAKE, FEE, WINDOW, GRACE = 10_000, 100, 1_000, 5_000
GOOD, BAD = hash_value("good"), hash_value("bad")


def config() -> NetworkConfig:
    return NetworkConfig(
        minter=MINTER.address,
        network="deai-adv-ledger",
        unbonding_delay_ms=10_000,
        stake_fee_ratio_bps=10_000,
        resolve_grace_ms=GRACE,
        resolvers=(HUB.address,),
    )


class Net:
    def __init__(self, ledger, clock: ManualClock) -> None:
        self.ledger, self.clock = ledger, clock
        self.minted = 0

    def send(self, account: Account, tx):
        return self.ledger.send(account, tx)

    def fund(self, account: Account, amount: int) -> None:
        self.send(MINTER, txs.Mint(to=account.address, amount=amount))

    def staked(self, account: Account, role: str, amount: int) -> None:
        self.fund(account, amount)
        self.send(account, txs.Stake(role=role, amount=amount))

    def refused(self, error: type[Exception], account: Account, tx) -> None:
        """``tx`` is refused with ``error`` and changes nothing (not even the sender's nonce)."""
        root, head = self.ledger.state_root(), self.ledger.head()
        with pytest.raises(error):
            self.send(account, tx)
        assert (self.ledger.state_root(), self.ledger.head()) == (root, head)

    def conserved(self) -> None:
        supply = self.ledger.check_invariants()
        assert sum(v for k, v in supply.items() if k != "minted") == supply["minted"]


@pytest.fixture(params=["memory", "sqlite"])
def net(request, tmp_path):
    clock = ManualClock(1_000_000)
    if request.param == "memory":
        ledger = MemoryLedger(config(), clock=clock)
    else:
        ledger = SqliteLedger(tmp_path / "ledger.sqlite", config(), clock=clock, synchronous="NORMAL")
    n = Net(ledger, clock)
    for a in HONEST:
        n.staked(a, COMPUTE, STAKE)
    yield n
    n.conserved()
    ledger.close()


def job_tx(label: str, **over) -> txs.RegisterJob:
    job = hash_value(label)
    base = dict(
        job=job,
        task=None,
        job_type="aggregate",
        inputs=(),
        fee=FEE,
        executors=3,
        replication=replication_commitment(job, True, 0, hash_value(label + "salt")),
        commit_window_ms=WINDOW,
        reveal_window_ms=WINDOW,
    )
    return txs.RegisterJob(**{**base, **over})


def by_address(address: str) -> Account:
    return next(a for a in [*HONEST, ATTACKER, SYBIL, STRANGER, COORD, HUB] if a.address == address)


def commit(net: Net, job: str, account: Account, digest: str) -> str:
    salt = hash_value(job + account.address)
    net.send(account, txs.Commit(job=job, commitment=result_commitment(job, account.address, digest, salt)))
    return salt


def reveal(net: Net, job: str, account: Account, digest: str) -> None:
    net.send(account, txs.Reveal(job=job, digest=digest, salt=hash_value(job + account.address)))


def stakes(net: Net, accounts) -> list[int]:
    return [net.ledger.stake(a.address, COMPUTE) for a in accounts]


# -- finding 1: who may create a job, and on what terms ---------------------------------------------


def test_an_outsider_cannot_register_a_job_that_endangers_anyone(net):
    net.refused(errors.InsufficientBalance, ATTACKER, job_tx("unfunded"))  # no funds, no job
    net.fund(STRANGER, 100_000)
    for a in HONEST[:3]:
        net.staked(a, DATA, 1_000)
        net.staked(a, HOST, STAKE)
    net.refused(errors.JobError, STRANGER, job_tx("free", fee=0))
    net.refused(errors.JobError, STRANGER, job_tx("data", role=DATA))  # data providers never execute
    net.refused(errors.JobError, STRANGER, job_tx("host-no-model", role=HOST))
    net.refused(errors.UnknownModel, STRANGER, job_tx("host-bad-model", role=HOST, model=hash_value("m")))
    net.refused(errors.JobError, STRANGER, job_tx("frozen", commit_window_ms=2**40))
    net.refused(errors.JobError, STRANGER, job_tx("frozen2", reveal_window_ms=600_001))
    net.refused(errors.JobError, STRANGER, job_tx("q1", quorum=1))  # 1 of 3 is no majority
    net.refused(errors.JobError, STRANGER, job_tx("q4", quorum=4))
    net.refused(errors.NotAuthorized, STRANGER, job_tx("res", resolver=SYBIL.address))
    net.send(STRANGER, job_tx("ok-q2", quorum=2))
    net.send(STRANGER, job_tx("ok-hub", resolver=HUB.address))
    # outside a task a creator may not resolve its own job (issue 13: a Sybil drawn beside an
    # honest executor would let it fault that one over a one-bit tolerance difference)
    net.refused(errors.NotAuthorized, STRANGER, job_tx("self", resolver=STRANGER.address))
    assert all(net.ledger.locked(a.address, r) == 0 for a in HONEST for r in (COMPUTE, HOST, DATA))


def test_config_bounds_every_job_duration():
    with pytest.raises(LedgerError):
        NetworkConfig(minter=MINTER.address, resolve_grace_ms=2**40)
    with pytest.raises(LedgerError):
        NetworkConfig(minter=MINTER.address, max_job_window_ms=2**40)
    with pytest.raises(LedgerError):
        NetworkConfig(minter=MINTER.address, min_job_fee=0)


def test_drawn_executors_that_ignore_a_strangers_job_lose_nothing(net):
    """Finding 1 / 11: drawn, never committed -> no lock, no slash, no reputation change."""
    net.fund(STRANGER, 100_000)
    before = stakes(net, HONEST)
    job = job_tx("stranger")
    net.send(STRANGER, job)
    drawn = list(net.ledger.job(job.job).executors)
    victim = by_address(drawn[0])
    net.send(victim, txs.Unstake(role=COMPUTE, amount=STAKE))  # nothing was ever locked
    net.clock.advance(WINDOW)
    net.send(
        STRANGER,
        txs.RevealReplication(job=job.job, replicated=True, primary=0, salt=hash_value("strangersalt")),
    )
    net.clock.advance(WINDOW)
    resolved = net.send(HONEST[3], txs.ResolveJob(job=job.job))
    data = resolved.event("job_resolved").data
    assert data["faulted"] == [] and data["missed"] == drawn and data["refund"] == 3 * FEE
    assert not [e for e in resolved.events if e.kind == "slashed"]
    after = stakes(net, HONEST)
    assert [b - a for a, b in zip(after, before, strict=True)] == [
        STAKE if a.address == victim.address else 0 for a in HONEST
    ]
    assert all(net.ledger.reputation(a.address, COMPUTE) == 0 for a in HONEST)
    assert net.ledger.balance(STRANGER.address) == 100_000


def test_a_stranger_that_never_reveals_its_choice_frees_every_lock_in_bounded_time(net):
    net.fund(STRANGER, 100_000)
    job = job_tx("bounded", commit_window_ms=600_000, reveal_window_ms=600_000)
    net.send(STRANGER, job)
    e = by_address(net.ledger.job(job.job).executors[0])
    commit(net, job.job, e, GOOD)
    net.refused(errors.StakeLocked, e, txs.Unstake(role=COMPUTE, amount=STAKE))
    net.clock.advance(2 * 600_000)  # at most two windows (the resolver-less job needs no grace)
    net.send(e, txs.ResolveJob(job=job.job))  # the locked executor frees itself
    net.send(e, txs.Unstake(role=COMPUTE, amount=STAKE))


def test_a_sybil_with_quorum_tricks_cannot_take_honest_stakes(net):
    """The finding's scenario: one minimum-staked Sybil and quorum 1 took half the slashes of the
    honest executors that never heard of the job. Now quorum 1 of 3 is refused; with the strict
    majority the Sybil alone decides nothing, honest executors that ignore the job are only missed,
    and honest ones that answered cannot be faulted by the attacker as resolver."""
    for a in HONEST[2:]:  # only two honest compute providers left: the Sybil is always drawn
        net.send(a, txs.Unstake(role=COMPUTE, amount=STAKE))
    net.fund(ATTACKER, 1_000)
    net.staked(SYBIL, COMPUTE, 1_000)
    honest = HONEST[:2]
    before = stakes(net, honest)
    wealth = lambda: sum(  # noqa: E731
        net.ledger.balance(a.address) + net.ledger.stake(a.address, COMPUTE) for a in (ATTACKER, SYBIL)
    )
    start = wealth()
    net.refused(errors.JobError, ATTACKER, job_tx("sybil-q1", fee=1, quorum=1))
    # honest executors never hear of the job; the Sybil commits and reveals alone
    net.refused(errors.NotAuthorized, ATTACKER, job_tx("sybil-self", fee=1, resolver=ATTACKER.address))
    # the worst a resolver can do (here the network's resolver, compromised): accept the Sybil alone
    job = job_tx("sybil", fee=1, resolver=HUB.address)
    net.send(ATTACKER, job)
    assert set(net.ledger.job(job.job).executors) == {honest[0].address, honest[1].address, SYBIL.address}
    commit(net, job.job, SYBIL, BAD)
    net.clock.advance(WINDOW)
    reveal(net, job.job, SYBIL, BAD)
    net.send(
        ATTACKER, txs.RevealReplication(job=job.job, replicated=True, primary=0, salt=hash_value("sybilsalt"))
    )
    net.clock.advance(WINDOW)
    data = net.send(HUB, txs.AcceptResult(job=job.job, accepted=(SYBIL.address,))).event("job_resolved").data
    assert data["faulted"] == [] and sorted(data["missed"]) == sorted(a.address for a in honest)
    assert stakes(net, honest) == before
    # honest executors that did answer: the attacker as resolver cannot fault them either
    job2 = job_tx("sybil2", fee=1, resolver=HUB.address)
    net.send(ATTACKER, job2)
    for a in honest:
        commit(net, job2.job, a, GOOD)
    commit(net, job2.job, SYBIL, BAD)
    for a in honest:
        reveal(net, job2.job, a, GOOD)
    reveal(net, job2.job, SYBIL, BAD)
    net.send(
        ATTACKER,
        txs.RevealReplication(job=job2.job, replicated=True, primary=0, salt=hash_value("sybil2salt")),
    )
    net.refused(
        errors.BadAcceptance,
        HUB,
        txs.AcceptResult(job=job2.job, accepted=(SYBIL.address, honest[0].address)),
    )
    data = net.send(HUB, txs.AcceptResult(job=job2.job, accepted=(SYBIL.address,))).event("job_resolved").data
    assert data["faulted"] == []  # a minority acceptance faults nobody
    assert stakes(net, honest) == before
    assert wealth() <= start  # the attack paid fees and gained nothing


def test_a_resolver_cannot_fault_an_executor_with_the_accepted_digest(net):
    net.fund(STRANGER, 100_000)
    job = job_tx("same-digest", resolver=HUB.address)
    net.send(STRANGER, job)
    e0, e1, e2 = (by_address(a) for a in net.ledger.job(job.job).executors)
    for e, d in ((e0, GOOD), (e1, GOOD), (e2, BAD)):
        commit(net, job.job, e, d)
    for e, d in ((e0, GOOD), (e1, GOOD), (e2, BAD)):
        reveal(net, job.job, e, d)
    net.send(
        STRANGER,
        txs.RevealReplication(job=job.job, replicated=True, primary=0, salt=hash_value("same-digestsalt")),
    )
    net.refused(errors.BadAcceptance, HUB, txs.AcceptResult(job=job.job, accepted=(e0.address, e2.address)))
    data = (
        net.send(HUB, txs.AcceptResult(job=job.job, accepted=(e0.address, e1.address)))
        .event("job_resolved")
        .data
    )
    assert data["faulted"] == [e2.address]
    slashed = [ev.data for ev in net.ledger.events(since=0) if ev.kind == "slashed"]
    assert [s["reason"] for s in slashed] == ["wrong result"]
    assert net.ledger.stake(e0.address, COMPUTE) == net.ledger.stake(e1.address, COMPUTE) == STAKE


def test_a_commit_needs_the_stake_the_draw_required(net):
    net.fund(STRANGER, 100_000)
    job = job_tx("restaked")
    net.send(STRANGER, job)
    e = by_address(net.ledger.job(job.job).executors[0])
    net.send(e, txs.Unstake(role=COMPUTE, amount=STAKE))
    net.refused(errors.StakeBelowMinimum, e, txs.Commit(job=job.job, commitment=GOOD))


# -- finding 5: task job fees come from the task's escrow --------------------------------------------


def test_task_job_fees_come_from_the_task_budget(net):
    net.fund(COORD, 1_000_000)
    net.fund(ATTACKER, 10)
    empty, funded = hash_value("task-empty"), hash_value("task-funded")
    net.send(ATTACKER, txs.CreateTask(task=empty, budget=0, params=empty, coordinator=COORD.address))
    before = net.ledger.balance(COORD.address)
    # the finding: a budget-0 task with job_fee 50,000 drained the hub; now the escrow is refused
    net.refused(errors.InsufficientEscrow, COORD, job_tx("drain", task=empty, fee=50_000, executors=1))
    net.refused(errors.NotAuthorized, ATTACKER, job_tx("not-coord", task=empty))  # only its coordinator
    net.fund(STRANGER, 10_000)
    net.send(STRANGER, txs.CreateTask(task=funded, budget=1_000, params=funded, coordinator=COORD.address))
    net.refused(errors.NotAuthorized, COORD, job_tx("bad-resolver", task=funded, resolver=HUB.address))
    job = job_tx("task-job", task=funded, resolver=COORD.address)
    net.send(COORD, job)
    assert net.ledger.task(funded).budget == 1_000 - 3 * FEE
    execs = [by_address(a) for a in net.ledger.job(job.job).executors]
    for e in execs[:2]:
        commit(net, job.job, e, GOOD)
    net.clock.advance(WINDOW)
    for e in execs[:2]:
        reveal(net, job.job, e, GOOD)
    net.send(
        COORD, txs.RevealReplication(job=job.job, replicated=True, primary=0, salt=hash_value("task-jobsalt"))
    )
    net.clock.advance(WINDOW)
    data = net.send(COORD, txs.AcceptResult(job=job.job, accepted=tuple(e.address for e in execs[:2])))
    assert data.event("job_resolved").data["refund"] == FEE
    assert net.ledger.task(funded).budget == 1_000 - 2 * FEE  # the unpaid fee went back to it
    assert net.ledger.balance(COORD.address) == before  # the coordinator paid nothing
    net.send(COORD, txs.CloseTask(task=funded))
    assert net.ledger.balance(STRANGER.address) == 10_000 - 2 * FEE  # the creator got the rest


# -- finding 4: model ids cannot be squatted ---------------------------------------------------------


def test_model_ids_cannot_be_squatted(net):
    net.fund(COORD, 10)
    net.fund(STRANGER, 10)
    task = hash_value("model-task")
    net.send(STRANGER, txs.CreateTask(task=task, budget=0, params=task, coordinator=COORD.address))
    checkpoint = "0x" + sha256_hex(b"public checkpoint bytes")
    document = hash_value("provenance document")
    tree = shares_tree({HONEST[0].address: 10_000})
    squat = dict(task=None, provenance=tree.root, document=document, total_shares=10_000, host_bps=3_000)
    honest_id = model_id(COORD.address, task, document)
    for mid in (checkpoint, honest_id, model_id(COORD.address, None, document)):
        net.refused(errors.BadModelId, ATTACKER, txs.RegisterModel(model=mid, **squat))
    net.refused(errors.NotAuthorized, ATTACKER, txs.RegisterModel(model=honest_id, **{**squat, "task": task}))
    # the coordinator registers its task's model under the id derived from it
    net.send(COORD, txs.RegisterModel(model=honest_id, **{**squat, "task": task}))
    assert net.ledger.model(honest_id).owner == COORD.address
    # a copy of the same document under the attacker's own id is its own model, not this one
    own = model_id(ATTACKER.address, None, document)
    net.send(ATTACKER, txs.RegisterModel(model=own, **squat))
    assert own != honest_id and net.ledger.model(honest_id).owner == COORD.address


# -- finding 10: a member keeps its role stake --------------------------------------------------------


def test_a_member_cannot_unstake_its_role_until_it_left_the_task(net):
    member = HONEST[0]
    net.fund(STRANGER, 10)
    task = hash_value("member-task")
    net.send(STRANGER, txs.CreateTask(task=task, budget=0, params=task))
    net.send(member, txs.JoinTask(task=task, role=COMPUTE))
    net.refused(errors.StakeLocked, member, txs.Unstake(role=COMPUTE, amount=STAKE))
    net.refused(errors.TaskStillOpen, member, txs.LeaveTask(task=task))
    net.send(STRANGER, txs.CloseTask(task=task))
    net.refused(errors.StakeLocked, member, txs.Unstake(role=COMPUTE, amount=STAKE))  # closed, not left
    net.send(member, txs.LeaveTask(task=task))
    net.send(member, txs.Unstake(role=COMPUTE, amount=STAKE))


# -- property: nobody is slashed for a job it did not commit to --------------------------------------

ACTORS = [*HONEST, ATTACKER, SYBIL, STRANGER]
actor = st.integers(0, len(ACTORS) - 1)


class JobMachine(RuleBasedStateMachine):
    """Random register / commit / reveal / resolve / accept by random actors, some unfunded."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock(1_000_000)
        self.ledger = MemoryLedger(config(), clock=self.clock)
        for i, a in enumerate(ACTORS):
            if a is not ATTACKER:
                self.ledger.send(MINTER, txs.Mint(to=a.address, amount=50_000))
            if i < 5 and a is not ATTACKER:
                self.ledger.send(a, txs.Stake(role=COMPUTE, amount=20_000 + 1_000 * i))
        self.jobs: list[tuple[str, Account, bool]] = []
        self.committed: dict[tuple[str, str], str] = {}
        self.count = 0

    def send(self, account: Account, tx):
        root = self.ledger.state_root()
        try:
            receipt = self.ledger.send(account, tx)
        except LedgerError:
            assert self.ledger.state_root() == root
            return None
        for ev in receipt.events:
            if ev.kind == "slashed":  # only an executor that accepted the duty can lose stake
                assert self.ledger.commitment(ev.data["job"], ev.data["account"]) is not None
            if ev.kind == "job_resolved":
                for m in ev.data["missed"]:
                    assert self.ledger.commitment(ev.data["job"], m) is None
        return receipt

    @rule(
        i=actor,
        r=st.integers(1, 4),
        fee=st.integers(0, 3_000),
        quorum=st.integers(0, 4),
        rep=st.booleans(),
        resolver=st.sampled_from([None, "self", "hub", "other"]),
        window=st.sampled_from([500, 5_000, 600_000, 600_001]),
    )
    def register(self, i, r, fee, quorum, rep, resolver, window):
        self.count += 1
        job = hash_value(f"prop{self.count}")
        creator = ACTORS[i]
        res = {None: None, "self": creator.address, "hub": HUB.address, "other": SYBIL.address}[resolver]
        tx = job_tx(
            f"prop{self.count}",
            fee=fee,
            executors=r,
            quorum=quorum,
            resolver=res,
            commit_window_ms=window,
            replication=replication_commitment(job, rep, 0, hash_value(job)),
        )
        if self.send(creator, tx):
            self.jobs.append((job, creator, rep))

    def _pick(self, k):
        return self.jobs[k % len(self.jobs)] if self.jobs else None

    @rule(k=st.integers(0, 20), e=st.integers(0, 3), d=st.booleans())
    def commit(self, k, e, d):
        if (picked := self._pick(k)) is None:
            return
        job = picked[0]
        executors = self.ledger.job(job).executors
        who = by_address(executors[e % len(executors)])
        digest = GOOD if d else BAD
        salt = hash_value(job + who.address)
        if self.send(who, txs.Commit(job=job, commitment=result_commitment(job, who.address, digest, salt))):
            self.committed[(job, who.address)] = digest

    @rule(k=st.integers(0, 20), e=st.integers(0, 3), lie=st.booleans())
    def reveal(self, k, e, lie):
        if (picked := self._pick(k)) is None:
            return
        job = picked[0]
        executors = self.ledger.job(job).executors
        who = by_address(executors[e % len(executors)])
        digest = self.committed.get((job, who.address), GOOD)
        digest = BAD if lie and digest == GOOD else digest  # a lie cannot open the commitment
        self.send(who, txs.Reveal(job=job, digest=digest, salt=hash_value(job + who.address)))

    @rule(k=st.integers(0, 20))
    def reveal_replication(self, k):
        if (picked := self._pick(k)) is None:
            return
        job, creator, rep = picked
        self.send(creator, txs.RevealReplication(job=job, replicated=rep, primary=0, salt=hash_value(job)))

    @rule(k=st.integers(0, 20), i=actor, accept=st.sets(st.integers(0, 3), max_size=4))
    def resolve(self, k, i, accept):
        if (picked := self._pick(k)) is None:
            return
        job = picked[0]
        executors = self.ledger.job(job).executors
        chosen = tuple(sorted({executors[a % len(executors)] for a in accept}))
        for who in (ACTORS[i], HUB, picked[1]):
            self.send(who, txs.AcceptResult(job=job, accepted=chosen))
        self.send(ACTORS[i], txs.ResolveJob(job=job))

    @rule(
        i=actor,
        r=st.integers(1, 4),
        rep=st.booleans(),
        resolver=st.sampled_from([None, "self", "hub"]),
        plan=st.lists(st.sampled_from(["ignore", "good", "bad", "withhold"]), min_size=4, max_size=4),
        reveal_rep=st.booleans(),
        accept=st.sets(st.integers(0, 3), max_size=4),
    )
    def lifecycle(self, i, r, rep, resolver, plan, reveal_rep, accept):
        """A whole job whose drawn executors ignore it, answer right or wrong, or withhold."""
        self.count += 1
        job = hash_value(f"life{self.count}")
        creator = ACTORS[i]
        res = {None: None, "self": creator.address, "hub": HUB.address}[resolver]
        tx = job_tx(
            f"life{self.count}",
            executors=r,
            resolver=res,
            replication=replication_commitment(job, rep, 0, hash_value(job)),
        )
        if not self.send(creator, tx):
            return
        self.jobs.append((job, creator, rep))
        executors = [by_address(a) for a in self.ledger.job(job).executors]
        for e, what in zip(executors, plan, strict=False):
            if what != "ignore":
                digest = BAD if what == "bad" else GOOD
                c = result_commitment(job, e.address, digest, hash_value(job + e.address))
                if self.send(e, txs.Commit(job=job, commitment=c)):
                    self.committed[(job, e.address)] = digest
        self.clock.advance(WINDOW)
        for e, what in zip(executors, plan, strict=False):
            if what in ("good", "bad"):
                digest = self.committed.get((job, e.address), GOOD)
                self.send(e, txs.Reveal(job=job, digest=digest, salt=hash_value(job + e.address)))
        if reveal_rep:
            self.send(
                creator, txs.RevealReplication(job=job, replicated=rep, primary=0, salt=hash_value(job))
            )
        self.clock.advance(WINDOW)
        if res is not None:
            chosen = tuple(sorted({executors[a % len(executors)].address for a in accept}))
            self.send(by_address(res), txs.AcceptResult(job=job, accepted=chosen))
        self.clock.advance(GRACE)
        self.send(ACTORS[(i + 1) % len(ACTORS)], txs.ResolveJob(job=job))

    @rule(i=actor)
    def unstake(self, i):
        self.send(ACTORS[i], txs.Unstake(role=COMPUTE, amount=1_000))

    @rule(ms=st.sampled_from([0, 400, 3_000, 12_000, 1_300_000]))
    def tick(self, ms):
        self.clock.advance(ms)

    @invariant()
    def conserved_and_locks_match_commits(self):
        self.ledger.check_invariants()
        for a in ACTORS:
            open_commits = sum(
                1
                for job, _, _ in self.jobs
                if self.ledger.job(job).status == "open" and self.ledger.commitment(job, a.address)
            )
            assert self.ledger.locked(a.address, COMPUTE) == open_commits


def test_random_job_sequences_slash_only_committed_executors_and_conserve_funds():
    JobMachine.TestCase.settings = settings(
        max_examples=25, stateful_step_count=30, deadline=None, suppress_health_check=list(HealthCheck)
    )
    JobMachine.TestCase().runTest()
