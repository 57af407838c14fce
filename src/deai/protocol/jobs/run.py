"""The verified-job engine: one job driven through the ledger by events and time.

This is the only engine: the network's hub runs it for a task's aggregation and scoring jobs
(:class:`~deai.protocol.task.coordinator.TaskCoordinator`) and for paid inference
(:class:`~deai.node.hub.inference.InferenceRun`, the user's pre-signed transactions); tests and
benchmarks step it in-process with :class:`~deai.protocol.jobs.driver.JobDriver`. It is a state
machine: :meth:`JobRun.step` looks at the ledger at time ``now`` and takes the next due action:

1. **register** the attempt (the ledger escrows the fees -- from the task's budget for a task's
   job -- and draws the executors) with the creator's hidden-sampling commitment. The choice is
   derived from the creator's signature of the job id (:func:`replication_choice`): secret,
   reproducible, never stored. A budget that cannot escrow the fees fails the run
   (``InsufficientEscrow`` in :attr:`JobRun.refusals`). The resolver is the creator: for a task's
   job its coordinator, otherwise the creator must be one of the genesis ``config.resolvers``
   (e.g. the hub); the ledger refuses any other.
2. once every drawn executor committed, or the commit deadline passed: **reveal the choice**;
3. once every required executor revealed, or the reveal deadline passed: **check** each revealed
   upload (:func:`~deai.protocol.jobs.commit_reveal.check_upload`) and **decide**
   (:func:`~deai.protocol.jobs.compare.decide`) over the required executors of *every attempt so
   far together* (each executor one vote, silent ones counting against the strict majority);
4. **escalate** -- a new attempt (the spec with ``nonce + 1``), always replicated, ``r + extra``
   executors drawn afresh -- when there is no majority (up to ``max_attempts``), or once, when the
   first attempt's valid outputs disagree and the pool holds executors who have not voted yet: a
   bloc that outvoted an honest minority of the first ``r`` must then also hold a majority of
   everyone who voted;
5. **accept**: each attempt is resolved with ``accept_result`` naming its executors that agree with
   the winner (and any that revealed the same digest). When they are a strict majority of the
   attempt's required executors the ledger slashes the others that committed; when they are an
   honest minority outvoted in that attempt, the ledger pays them and faults nobody for a revealed
   result. An attempt where nobody agrees with the winner, and every attempt of a failed run, goes
   to :attr:`JobRun.stale`, resolved by :meth:`JobRun.resolve_stale` with the ledger's own
   ``resolve_job`` after the grace period (slashes withheld reveals, refunds the fee).

Every action first checks the ledger, so replaying a step after a crash never registers, reveals or
accepts twice. The state is plain JSON (:meth:`JobRun.to_json`).
"""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass, field
from typing import Any, Self

from deai.core.accounts import Account
from deai.core.blobs import BlobStore
from deai.core.encoding import from_hex, sha256
from deai.core.errors import DeaiError
from deai.ledger.base import Ledger
from deai.ledger.config import COMPUTE
from deai.ledger.errors import InsufficientBalance, InsufficientEscrow, LedgerError
from deai.ledger.rules.jobs import required_executors
from deai.ledger.txs import AcceptResult, RegisterJob, ResolveJob, RevealReplication
from deai.protocol.jobs.commit_reveal import check_upload
from deai.protocol.jobs.compare import agrees, decide
from deai.protocol.jobs.kinds.base import Layout, Tensors, close_inputs, get_kind, load_inputs
from deai.protocol.jobs.sampling import ReplicationChoice
from deai.protocol.jobs.spec import JobSpec

__all__ = ["Attempt", "JobRun", "replication_choice"]


def replication_choice(creator: Account, job_id: str, p: float, r: int) -> ReplicationChoice:
    """The creator's hidden choice for ``job_id``: seeded by its own (deterministic) signature of the
    job id, so nobody else can predict it and the creator recomputes it after a restart."""
    seed = sha256(creator.sign(b"deai-replication" + from_hex(job_id, length=32, what="job id")))
    return ReplicationChoice.draw(job_id, p, r, random.Random(seed))


@dataclass
class Attempt:
    """One attempt of a run: the ``job`` id on the ledger (the spec's id with this ``nonce``), the
    ``r`` executors drawn (lowered to the eligible pool at registration) and the probability ``p``
    that every one of them must execute (hidden sampling)."""

    job: str
    nonce: int
    r: int
    p: float

    def to_json(self) -> dict[str, Any]:
        return {"job": self.job, "nonce": self.nonce, "r": self.r, "p": self.p}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        return cls(data["job"], data["nonce"], data["r"], data["p"])


@dataclass
class JobRun:
    """A verified job for ``purpose`` (e.g. ``"aggregate"``), over one or more attempts.

    ``status``: pending | running | accepted | failed. After ``accepted``: ``output`` (the accepted
    digest, hex without 0x, revealed in attempt ``output_job``), ``accepted``/``faulted`` (over all
    attempts, each address once) and :meth:`fees_paid`."""

    spec: JobSpec
    purpose: str
    r: int = 3
    p: float = 0.1
    fee: int = 10
    extra: int = 2
    commit_ms: int = 30_000
    reveal_ms: int = 30_000
    task: str | None = None
    max_attempts: int = 4
    role: str = COMPUTE
    model: str | None = None  # a registered model the job serves: royalties flow to it
    quorum: int = 0  # 0: a strict majority; 1 on a refereed train_steps job (ledger REFEREED)
    attempts: list[Attempt] = field(default_factory=list)
    status: str = "pending"
    output: str | None = None
    output_job: str | None = None
    accepted: list[str] = field(default_factory=list)
    faulted: list[str] = field(default_factory=list)
    paid: int = 0  # executor fees paid over all attempts (accepted slots)
    stale: list[str] = field(default_factory=list)  # attempts to resolve after the grace
    refusals: list[str] = field(default_factory=list)  # "who: Error: reason"
    _layout: Layout | None = field(default=None, repr=False, compare=False)
    _outputs: dict[str, dict[str, Tensors | None]] = field(default_factory=dict, repr=False, compare=False)

    # -- persistence ---------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        out = {"spec": self.spec.to_json(), **{k: getattr(self, k) for k in _FIELDS}}
        out["attempts"] = [a.to_json() for a in self.attempts]
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        fields = {k: data[k] for k in _FIELDS if k in data}
        fields["attempts"] = [Attempt.from_json(a) for a in fields.get("attempts", [])]
        return cls(JobSpec.from_json(data["spec"]), **fields)

    # -- views -----------------------------------------------------------------------------------------

    @property
    def current(self) -> Attempt | None:
        return self.attempts[-1] if self.attempts else None

    @property
    def done(self) -> bool:
        return self.status in ("accepted", "failed")

    @property
    def escalated(self) -> bool:
        return len(self.attempts) > 1

    def choice(self, creator: Account, attempt: Attempt) -> ReplicationChoice:
        return replication_choice(creator, attempt.job, attempt.p, attempt.r)

    def active(self, creator: Account, job_id: str) -> list[int]:
        """Indices of the drawn executors of ``job_id`` that must execute (private to the creator)."""
        for att in self.attempts:
            if att.job == job_id:
                return self.choice(creator, att).active(att.r)
        return []

    def valid_outputs(self) -> int:
        """Required executors whose upload passed the checks, over the attempts decided in this
        process (the executions the protocol paid for)."""
        return sum(o is not None for outs in self._outputs.values() for o in outs.values())

    def fees_paid(self) -> int:
        """What the run paid its executors over all attempts (out of the task's budget for a task
        job); 0 unless accepted."""
        return self.fee * self.paid if self.status == "accepted" else 0

    # -- driving ---------------------------------------------------------------------------------------

    def step(self, ledger: Ledger, store: BlobStore, creator: Account, now: int) -> bool:
        """Take the next due action; True if something was done."""
        if self.done:
            return False
        if not self.attempts:
            self._new_attempt(self.spec.nonce, self.r, self.p)
        att = self.attempts[-1]
        job = ledger.job(att.job)
        if job is None:
            return self._register(ledger, store, creator, att)
        self.status = "running"
        if job.status != "open":  # resolved already (a restart after accepting, or by anyone)
            if job.status == "accepted":
                return self._decide(ledger, store, creator)
            return self._escalate()
        if job.replicated is None:
            if job.commits < len(job.executors) and now < job.commit_deadline:
                return False
            self._reveal_choice(ledger, creator, att)
            return True
        required = required_executors(job)
        revealed = [e for e in required if ledger.revealed(att.job, e) is not None]
        if len(revealed) < len(required) and now < job.reveal_deadline:
            return False
        return self._decide(ledger, store, creator)

    def prepare(self, store: BlobStore) -> None:
        """Optional, while the executors work: learn the output layout now (it reads every input),
        so that checking their uploads after the reveals does not wait for it. Touches nothing but
        that cache, so a runner may call it outside its lock. A failure is left for the decision."""
        if self.done or self._layout is not None:
            return
        with contextlib.suppress(DeaiError):
            self.layout_of(store)

    def resolve_stale(self, ledger: Ledger, account: Account, now: int) -> bool:
        """Resolve the :attr:`stale` attempts whose grace period has passed with the ledger's own
        ``resolve_job`` (``account`` signs; anyone may). True if the list changed."""
        did = False
        for job_id in list(self.stale):
            job = ledger.job(job_id)
            if job is not None and job.status == "open":
                if now < job.reveal_deadline + ledger.config.resolve_grace_ms:
                    continue
                try:
                    ledger.send(account, ResolveJob(job=job_id))
                except LedgerError:
                    continue
            self.stale.remove(job_id)
            did = True
        return did

    # -- the phases ------------------------------------------------------------------------------------

    def layout_of(self, store: BlobStore) -> Layout:
        """The kind's output layout for this job (read from the inputs once, then cached)."""
        if self._layout is None:
            kind = get_kind(self.spec.kind)
            # streamed inputs are opened by their headers only: the hub never holds n updates of d
            inputs = load_inputs(store, self.spec, lazy=True)
            try:
                self._layout = kind.output_layout(inputs, self.spec.params)
            finally:
                close_inputs(inputs)
        return self._layout

    def spec_of(self, att: Attempt) -> JobSpec:
        """The spec of attempt ``att`` (the run's spec with the attempt's nonce)."""
        return JobSpec(self.spec.kind, self.spec.inputs, self.spec.params, self.spec.seed, att.nonce)

    def _new_attempt(self, nonce: int, r: int, p: float) -> None:
        spec = JobSpec(self.spec.kind, self.spec.inputs, self.spec.params, self.spec.seed, nonce)
        self.attempts.append(Attempt(spec.job_id, nonce, r, p))

    def _eligible(self, ledger: Ledger, creator: Account) -> int:
        return len(ledger.eligible_executors(self.role, self.fee, exclude=creator.address))

    def _register(self, ledger: Ledger, store: BlobStore, creator: Account, att: Attempt) -> bool:
        eligible = self._eligible(ledger, creator)
        if eligible < 1:
            return False  # wait for providers to stake
        att.r = min(att.r, eligible)
        spec = self.spec_of(att)
        store.put(spec.to_bytes())  # executors fetch the spec by the job id
        choice = self.choice(creator, att)
        register = RegisterJob(
            job=att.job,
            task=self.task,
            job_type=spec.kind,
            inputs=(att.job,),  # the spec (the job id's preimage) commits to every input
            fee=self.fee,
            executors=att.r,
            replication=choice.commitment,
            commit_window_ms=self.commit_ms,
            reveal_window_ms=self.reveal_ms,
            role=self.role,
            resolver=creator.address,
            quorum=self.quorum,  # 0: a strict majority, the ledger's floor for faulting anyone
            model=self.model,
        )
        try:
            ledger.send(creator, register)
        except (InsufficientEscrow, InsufficientBalance) as exc:  # retrying cannot help
            self.refusals.append(f"register: {type(exc).__name__}: {exc}")
            self.status = "failed"
            self.stale += [a.job for a in self.attempts[:-1] if a.job not in self.stale]
            return True
        self.status = "running"
        return True

    def _reveal_choice(self, ledger: Ledger, creator: Account, att: Attempt) -> None:
        choice = self.choice(creator, att)
        ledger.send(
            creator,
            RevealReplication(
                job=att.job, replicated=choice.replicated, primary=choice.primary, salt=choice.salt
            ),
        )

    def _checked(self, ledger: Ledger, store: BlobStore, job_id: str, required: list[str]) -> dict:
        """{executor: its checked output, or None} for one attempt (checked once, then cached)."""
        if job_id not in self._outputs:
            layout = self.layout_of(store)
            outs: dict[str, Tensors | None] = {}
            for e in required:
                digest, outs[e] = ledger.revealed(job_id, e), None
                if digest is None:
                    continue
                try:
                    outs[e] = check_upload(store, digest, layout)
                except DeaiError as exc:
                    note = f"{e}: {type(exc).__name__}: {exc}"
                    if note not in self.refusals:
                        self.refusals.append(note)
            self._outputs[job_id] = outs
        return self._outputs[job_id]

    def _votes(self, ledger: Ledger, store: BlobStore) -> list[tuple[str, Tensors | None]]:
        """Each required executor of every attempt once (drawn twice, it still has one vote), with
        its first valid output."""
        votes: dict[str, Tensors | None] = {}
        for att in self.attempts:
            job = ledger.job(att.job)
            if job is None or job.replicated is None:
                continue
            for e, out in self._checked(ledger, store, att.job, required_executors(job)).items():
                if votes.get(e) is None:
                    votes[e] = out
        return list(votes.items())

    def _decide(self, ledger: Ledger, store: BlobStore, creator: Account) -> bool:
        votes = self._votes(ledger, store)
        decision = decide([out for _, out in votes], get_kind(self.spec.kind).compare_rule(self.spec.params))
        if decision.winner is None or (not decision.unanimous and self._may_overturn(ledger, creator, votes)):
            return self._escalate()
        winner = votes[decision.winner][1]
        assert winner is not None  # the winner agrees with a strict majority: a valid output
        self._accept(ledger, store, creator, winner)
        return True

    def _may_overturn(self, ledger: Ledger, creator: Account, votes: list) -> bool:
        """Escalate a disputed first attempt only when it can change something: attempts are left
        and the pool holds executors that have not voted yet."""
        return len(self.attempts) == 1 < self.max_attempts and self._eligible(ledger, creator) > len(votes)

    def _escalate(self) -> bool:
        att = self.attempts[-1]  # a run escalates only once it has an attempt
        # an attempt without one valid output can have nobody agreeing with any winner: resolve it
        # by the ledger's rule after the grace without waiting for the decision
        for job_id, outs in self._outputs.items():
            if job_id not in self.stale and all(o is None for o in outs.values()):
                self.stale.append(job_id)
        if len(self.attempts) >= self.max_attempts:
            self.status = "failed"
            self.stale += [a.job for a in self.attempts if a.job not in self.stale]
            return True
        self._new_attempt(att.nonce + 1, att.r + self.extra, 1.0)
        return True

    def _accept(self, ledger: Ledger, store: BlobStore, creator: Account, winner: Tensors) -> None:
        """Resolve every attempt by the final winner (see the module docstring, step 5)."""
        self.paid = 0
        rule = get_kind(self.spec.kind).compare_rule(self.spec.params)
        accepted: list[str] = []
        faulted: list[str] = []
        for att in self.attempts:
            job_id, job = att.job, ledger.job(att.job)
            if job is None or job.replicated is None:
                continue
            if job.status != "open":  # resolved before a restart (or by someone after the grace)
                names, bad = list(job.accepted), list(job.faulted)
            else:
                outs = self._checked(ledger, store, job_id, required_executors(job))
                agree = {e for e, o in outs.items() if o is not None and agrees(o, winner, rule)}
                digests = {ledger.revealed(job_id, e) for e in agree}
                names = [e for e in outs if e in agree or ledger.revealed(job_id, e) in digests]
                if not names:
                    if job_id not in self.stale:
                        self.stale.append(job_id)
                    continue
                resolved = ledger.send(creator, AcceptResult(job=job_id, accepted=tuple(names)))
                data = resolved.event("job_resolved").data
                names, bad = list(data["accepted"]), list(data["faulted"])
            self.paid += len(names)
            if names:
                digest = ledger.revealed(job_id, names[0])
                assert digest is not None  # an accepted executor revealed its output
                self.output = digest.removeprefix("0x")
                self.output_job = job_id
            accepted += [a for a in names if a not in accepted]
            faulted += [f for f in bad if f not in faulted]
        self.status, self.accepted, self.faulted = "accepted", accepted, faulted


_FIELDS = (
    "purpose",
    "r",
    "p",
    "fee",
    "extra",
    "commit_ms",
    "reveal_ms",
    "task",
    "max_attempts",
    "role",
    "model",
    "quorum",
    "attempts",
    "status",
    "output",
    "output_job",
    "accepted",
    "faulted",
    "paid",
    "stale",
    "refusals",
)
