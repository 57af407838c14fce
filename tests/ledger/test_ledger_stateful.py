"""Invariants over random transaction sequences (hypothesis stateful testing), on every backend.

After every transaction: conservation (the supply buckets sum to the minted supply) and no
negative balance or stake; a refused transaction leaves the state root unchanged. At the end of a
sequence: ``verify`` replays the log to the same state root, and the SQLite ledger reopened from
disk has that root too.

The default run is small (a few dozen sequences); ``-m slow`` runs thousands (``DEAI_SMALL=1``:
a few hundred).
"""

from __future__ import annotations

import dataclasses
import json
import os

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from deai.core.accounts import Account
from deai.core.encoding import hash_value
from deai.ledger import (
    COMPUTE,
    DATA,
    HOST,
    LedgerError,
    ManualClock,
    SqliteLedger,
    model_id,
    payout_tree,
    replication_commitment,
    result_commitment,
    shares_tree,
    txs,
)

N = 6
RESOLVER = Account.from_seed("ledger-tests", 10)  # the genesis resolver of tests/ledger/conftest.py
actor = st.integers(0, N - 1)
amount = st.integers(1, 3_000)
role = st.sampled_from([DATA, COMPUTE, HOST])
DIGESTS = [hash_value(f"digest{i}") for i in range(3)]


class LedgerMachine(RuleBasedStateMachine):
    """Random transactions from N accounts (account 0 is the minter)."""

    factory = None  # set per run
    tamper = None
    accounts = None

    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock(10_000)
        self.ledger = type(self).factory(clock=self.clock)
        self.tasks: list[str] = []
        self.payouts: dict[tuple[str, int], object] = {}
        self.jobs: dict[str, dict] = {}
        self.models: dict[str, object] = {}
        self.refused = 0

    def acct(self, i: int):
        return self.accounts[i]

    def do(self, i: int, tx, nonce_shift: int = 0):
        """Submit; on refusal, check that nothing changed."""
        ledger = self.ledger
        before = ledger.state_root(), ledger.head()
        nonce = ledger.nonce(self.acct(i).address) + nonce_shift
        try:
            receipt = ledger.submit(ledger.sign(self.acct(i), tx, nonce=nonce))
        except LedgerError:
            self.refused += 1
            assert (ledger.state_root(), ledger.head()) == before, f"refused {tx} changed the state"
            return None
        for ev in receipt.events:  # a job slashes only executors that committed to it
            if ev.kind == "slashed" and ev.data["job"] is not None:
                assert ledger.commitment(ev.data["job"], ev.data["account"]) is not None, ev
        return receipt

    @initialize()
    def genesis(self):
        for i in range(N):
            self.do(0, txs.Mint(to=self.acct(i).address, amount=100_000))
        for i in range(1, 5):
            self.do(i, txs.Stake(role=COMPUTE, amount=5_000))

    # -- funds -------------------------------------------------------------------------------------------

    @rule(i=actor, to=actor, n=amount)
    def mint(self, i, to, n):
        self.do(i, txs.Mint(to=self.acct(to).address, amount=n))

    @rule(i=actor, to=actor, n=st.integers(1, 200_000))
    def transfer(self, i, to, n):
        self.do(i, txs.Transfer(to=self.acct(to).address, amount=n))

    @rule(i=actor, r=role, n=amount)
    def stake(self, i, r, n):
        self.do(i, txs.Stake(role=r, amount=n))

    @rule(i=actor, r=role, n=amount)
    def unstake(self, i, r, n):
        self.do(i, txs.Unstake(role=r, amount=n))

    @rule(i=actor, r=role)
    def withdraw(self, i, r):
        self.do(i, txs.Withdraw(role=r))

    @rule(i=actor, who=actor, r=role, n=amount)
    def slash(self, i, who, r, n):
        self.do(i, txs.Slash(account=self.acct(who).address, role=r, amount=n))

    @rule(i=actor, who=actor, d=st.integers(-10, 10))
    def reputation(self, i, who, d):
        self.do(i, txs.UpdateReputation(account=self.acct(who).address, role=COMPUTE, delta=d))

    @rule(ms=st.integers(0, 20_000))
    def tick(self, ms):
        self.clock.advance(ms)

    @rule(i=actor, shift=st.sampled_from([-1, 1, 5]))
    def wrong_nonce(self, i, shift):
        assert self.do(i, txs.Transfer(to=self.acct(0).address, amount=1), nonce_shift=shift) is None

    @rule(raw=st.binary(max_size=64))
    def garbage(self, raw):
        root = self.ledger.state_root()
        with pytest.raises(LedgerError):
            self.ledger.submit(raw)
        assert self.ledger.state_root() == root

    # -- tasks -------------------------------------------------------------------------------------------

    @rule(i=actor, label=st.integers(0, 3), budget=st.integers(0, 50_000), pstake=st.integers(0, 100))
    def create_task(self, i, label, budget, pstake):
        task = hash_value(f"task{label}")
        if self.do(i, txs.CreateTask(task=task, budget=budget, params=task, provider_stake=pstake)):
            self.tasks.append(task)

    @precondition(lambda self: self.tasks)
    @rule(i=actor, t=st.integers(0, 10), r=role)
    def join(self, i, t, r):
        self.do(i, txs.JoinTask(task=self.tasks[t % len(self.tasks)], role=r))

    @precondition(lambda self: self.tasks)
    @rule(i=actor, t=st.integers(0, 10), rnd=st.integers(1, 3))
    def checkpoint(self, i, t, rnd):
        task = self.tasks[t % len(self.tasks)]
        self.do(i, txs.PostCheckpoint(task=task, round=rnd, checkpoint=hash_value(rnd)))

    @precondition(lambda self: self.tasks)
    @rule(
        t=st.integers(0, 10),
        epoch=st.integers(0, 2),
        alloc=st.dictionaries(actor, st.integers(1, 20_000), min_size=1),
    )
    def post_payout(self, t, epoch, alloc):
        task = self.tasks[t % len(self.tasks)]
        record = self.ledger.task(task)
        tree = payout_tree({self.acct(i).address: n for i, n in alloc.items()})
        creator = next(i for i in range(N) if self.acct(i).address == record.coordinator)
        if self.do(creator, txs.PostPayoutRoot(task=task, epoch=epoch, root=tree.root, total=tree.total)):
            self.payouts[(task, epoch)] = tree

    @precondition(lambda self: self.payouts)
    @rule(k=st.integers(0, 10), i=actor, cheat=st.integers(0, 3))
    def claim(self, k, i, cheat):
        (task, epoch), tree = sorted(self.payouts.items())[k % len(self.payouts)]
        address = self.acct(i).address
        amount_ = tree.amounts.get(address, 1) + (1 if cheat == 0 else 0)
        proof = tuple(tree.proof(address)) if address in tree.amounts else ()
        self.do(i, txs.ClaimPayout(task=task, epoch=epoch, amount=amount_, proof=proof))

    @precondition(lambda self: self.tasks)
    @rule(i=actor, t=st.integers(0, 10), close=st.booleans())
    def close_or_leave(self, i, t, close):
        task = self.tasks[t % len(self.tasks)]
        self.do(i, txs.CloseTask(task=task) if close else txs.LeaveTask(task=task))

    # -- jobs --------------------------------------------------------------------------------------------

    @rule(
        i=actor,
        label=st.integers(0, 5),
        r=st.integers(1, 4),
        fee=st.integers(0, 5_000),
        rep=st.booleans(),
        primary=st.integers(0, 3),
        resolver=st.booleans(),
        task=st.integers(-1, 10),
    )
    def register_job(self, i, label, r, fee, rep, primary, resolver, task):
        """A job of the sender's own, or of a task (escrowed from its budget, by its coordinator)."""
        job = hash_value(f"job{label}")
        salt = hash_value(f"salt{label}")
        task_id = self.tasks[task % len(self.tasks)] if task >= 0 and self.tasks else None
        tx = txs.RegisterJob(
            job=job,
            task=task_id,
            job_type="t",
            inputs=(),
            fee=fee,
            executors=r,
            replication=replication_commitment(job, rep, primary, salt),
            commit_window_ms=5_000,
            reveal_window_ms=5_000,
            resolver=self.acct(N).address if resolver else None,  # the genesis resolver,
        )
        if self.do(i, tx):
            self.jobs[job] = {"creator": i, "salt": salt, "rep": rep, "primary": primary, "salts": {}}

    def _job(self, k):
        job = sorted(self.jobs)[k % len(self.jobs)]
        return job, self.jobs[job], self.ledger.job(job)

    def _index(self, address):
        return next(i for i in range(N) if self.acct(i).address == address)

    @precondition(lambda self: self.jobs)
    @rule(k=st.integers(0, 10), e=st.integers(0, 3), d=st.integers(0, 2))
    def commit(self, k, e, d):
        job, info, record = self._job(k)
        executor = record.executors[e % len(record.executors)]
        salt = hash_value(f"{job}{executor}{d}")
        info["salts"][executor] = (DIGESTS[d], salt)
        self.do(
            self._index(executor),
            txs.Commit(job=job, commitment=result_commitment(job, executor, DIGESTS[d], salt)),
        )

    @precondition(lambda self: self.jobs)
    @rule(k=st.integers(0, 10), e=st.integers(0, 3), lie=st.booleans())
    def reveal(self, k, e, lie):
        job, info, record = self._job(k)
        executor = record.executors[e % len(record.executors)]
        digest, salt = info["salts"].get(executor, (DIGESTS[0], DIGESTS[1]))
        self.do(self._index(executor), txs.Reveal(job=job, digest=DIGESTS[2] if lie else digest, salt=salt))

    @precondition(lambda self: self.jobs)
    @rule(k=st.integers(0, 10))
    def reveal_replication(self, k):
        job, info, _ = self._job(k)
        tx = txs.RevealReplication(
            job=job, replicated=info["rep"], primary=info["primary"], salt=info["salt"]
        )
        self.do(info["creator"], tx)

    @precondition(lambda self: self.jobs)
    @rule(k=st.integers(0, 10), i=actor, accept=st.integers(1, 3))
    def resolve(self, k, i, accept):
        job, info, record = self._job(k)
        self.do(i, txs.ResolveJob(job=job))
        self.do(info["creator"], txs.AcceptResult(job=job, accepted=tuple(record.executors[:accept])))
        self.do(N, txs.AcceptResult(job=job, accepted=tuple(record.executors[:accept])))

    @rule(
        i=actor,
        r=st.integers(1, 4),
        rep=st.booleans(),
        primary=st.integers(0, 3),
        behaviour=st.lists(st.sampled_from(["honest", "liar", "silent"]), min_size=4, max_size=4),
        reveal_rep=st.booleans(),
        resolver=st.booleans(),
    )
    def job_lifecycle(self, i, r, rep, primary, behaviour, reveal_rep, resolver):
        """A whole job: register, commit, reveal (honest, lying or silent executors), resolve."""
        self.counter = getattr(self, "counter", 0) + 1
        job, salt = hash_value(f"life{self.counter}"), hash_value(f"lifesalt{self.counter}")
        tx = txs.RegisterJob(
            job=job,
            task=None,
            job_type="t",
            inputs=(),
            fee=100,
            executors=r,
            replication=replication_commitment(job, rep, primary, salt),
            commit_window_ms=1_000,
            reveal_window_ms=1_000,
            resolver=self.acct(N).address if resolver else None,  # the genesis resolver,
        )
        if not self.do(i, tx):
            return
        executors = self.ledger.job(job).executors
        plan = []
        for e, b in zip(executors, behaviour, strict=False):
            digest = DIGESTS[0] if b == "honest" else DIGESTS[1 + len(plan) % 2]
            if b != "silent":
                s = hash_value(f"{job}{e}")
                self.do(self._index(e), txs.Commit(job=job, commitment=result_commitment(job, e, digest, s)))
                plan.append((e, digest, s))
        self.clock.advance(1_000)
        for e, digest, s in plan:
            self.do(self._index(e), txs.Reveal(job=job, digest=digest, salt=s))
        if reveal_rep:
            self.do(i, txs.RevealReplication(job=job, replicated=rep, primary=primary, salt=salt))
        self.clock.advance(1_000)
        if resolver:
            honest = tuple(e for e, d, _ in plan if d == DIGESTS[0])
            self.do(N, txs.AcceptResult(job=job, accepted=honest))
        self.do(i, txs.ResolveJob(job=job))

    @rule(
        i=actor, label=st.integers(0, 1000), alloc=st.dictionaries(actor, st.integers(1, 5_000), min_size=1)
    )
    def settle_and_claim(self, i, label, alloc):
        """A task paying a Merkle-rooted payout that everyone claims (and tries to claim twice)."""
        task = hash_value(f"settle{label}")
        tree = payout_tree({self.acct(j).address: n for j, n in alloc.items()})
        if not self.do(i, txs.CreateTask(task=task, budget=tree.total, params=task)):
            return
        self.tasks.append(task)
        if not self.do(i, txs.PostPayoutRoot(task=task, epoch=0, root=tree.root, total=tree.total)):
            return
        self.payouts[(task, 0)] = tree
        for j in sorted(alloc) + sorted(alloc)[:1]:
            address = self.acct(j).address
            self.do(j, txs.ClaimPayout(task=task, epoch=0, amount=alloc[j], proof=tuple(tree.proof(address))))

    # -- models ------------------------------------------------------------------------------------------

    @rule(
        i=actor,
        label=st.integers(0, 2),
        shares=st.lists(st.integers(1, 5_000), min_size=1, max_size=N),
        host_bps=st.integers(0, 10_000),
    )
    def register_model(self, i, label, shares, host_bps):
        document = hash_value(f"model{label}")
        model = model_id(self.acct(i).address, None, document)
        tree = shares_tree({self.acct(j).address: s for j, s in enumerate(shares)}, total=sum(shares))
        tx = txs.RegisterModel(
            model=model,
            task=None,
            provenance=tree.root,
            document=document,
            total_shares=tree.total,
            host_bps=host_bps,
        )
        if self.do(i, tx):
            self.models[model] = tree
        squatter = (i + 1) % N  # the same id from anyone else is refused
        assert self.do(squatter, dataclasses.replace(tx)) is None

    @precondition(lambda self: self.models)
    @rule(
        k=st.integers(0, 5), i=actor, n=st.integers(1, 50_000), hosts=st.sets(actor, min_size=1, max_size=3)
    )
    def pay_fee(self, k, i, n, hosts):
        model = sorted(self.models)[k % len(self.models)]
        self.do(
            i,
            txs.PayInferenceFee(
                model=model, amount=n, hosts=tuple(self.acct(h).address for h in sorted(hosts))
            ),
        )

    @precondition(lambda self: self.models)
    @rule(k=st.integers(0, 5), i=actor)
    def claim_royalty(self, k, i):
        model = sorted(self.models)[k % len(self.models)]
        tree = self.models[model]
        address = self.acct(i).address
        shares = tree.amounts.get(address, 1)
        proof = tuple(tree.proof(address)) if address in tree.amounts else ()
        self.do(i, txs.ClaimRoyalty(model=model, shares=shares, proof=proof))

    # -- invariants --------------------------------------------------------------------------------------

    @invariant()
    def conservation_and_non_negativity(self):
        self.ledger.check_invariants()

    def teardown(self):
        report = self.ledger.verify()
        assert report.ok, report.problem
        assert report.state_root == self.ledger.state_root()
        if isinstance(self.ledger, SqliteLedger):
            root, path = self.ledger.state_root(), self.ledger.path
            self.ledger.close()
            reopened = SqliteLedger(path)
            try:
                assert reopened.state_root() == root and reopened.verify().ok
            finally:
                reopened.close()
            self.ledger = SqliteLedger(path)
        height = self.ledger.head().height
        if height:  # a tampered entry is found
            seq = height * 7919 % height
            entry = next(e for e in self.ledger.log() if e.seq == seq)
            data = json.loads(entry.tx)
            data["nonce"] += 1
            type(self).tamper(
                self.ledger, seq, tx=json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
            )
            report = self.ledger.verify()
            assert not report.ok and f"log entry {seq}" in report.problem
        if isinstance(self.ledger, SqliteLedger):
            self.ledger.close()


def _run(ledger_factory, tamper, accounts, examples: int, steps: int) -> None:
    machine = type(
        "Machine",
        (LedgerMachine,),
        {"factory": staticmethod(ledger_factory), "tamper": staticmethod(tamper), "accounts": accounts},
    )
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=examples,
            stateful_step_count=steps,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        ),
    )


def test_invariants_over_random_sequences(ledger_factory, net, tamper):
    _run(
        ledger_factory,
        tamper,
        [*net.accounts[:N], RESOLVER],
        examples=50 if net.ledger.__class__.__name__ == "MemoryLedger" else 20,
        steps=30,
    )


@pytest.mark.slow
def test_invariants_over_thousands_of_sequences(ledger_factory, net, tamper):
    small = os.environ.get("DEAI_SMALL") == "1"
    memory = net.ledger.__class__.__name__ == "MemoryLedger"
    examples = (200 if memory else 40) if small else (2_000 if memory else 300)
    _run(ledger_factory, tamper, [*net.accounts[:N], RESOLVER], examples=examples, steps=40)
