"""Delegated training verified by refereed delegation: the resolver's side of a refereed job.

A creator with a model and data but no machines rents training as ``train_steps`` jobs with
``params.commit_every = k``: every executor's output carries the final checkpoint and its state
hashes every ``k`` steps (:mod:`deai.protocol.jobs.trajectory`), so the Merkle root of the whole
trajectory is committed with the result. The job is registered by the one job engine
(:class:`~deai.protocol.jobs.run.JobRun`) with ``r = 2`` drawn executors, hidden sampling ``p`` and
the ledger's ``quorum = REFEREED`` (:data:`deai.ledger.rules.jobs.REFEREED`). Unreplicated, the
primary's output is accepted as any job's; replicated with equal outputs, both are paid.

:class:`RefereedRun` changes one phase, the decision: when replicated outputs differ it runs a
:class:`~deai.protocol.jobs.refereed.Dispute` instead of a vote:

1. the bisection reads each party's committed hashes from its revealed output (the openings are
   its commitment, so a party cannot answer late or differently: ``ceil(log2 L)`` rounds, no
   message);
2. the state at the agreed leaf ``lo`` is the job's checkpoint, or an upload by a party (its hash
   checked; :func:`party_state`), and each party uploads its claimed state at ``hi`` (hash checked
   against its leaf) for the tolerance comparison; a party that uploads nothing in time has no claim;
3. a referee drawn among the staked compute providers (not a party; seeded by the ledger head and
   the job, :func:`draw_referee`) re-executes the one segment ``[lo, hi)`` from the agreed state
   (:func:`reexecute`); a referee that does not answer is replaced by the next draw
   (``max_referees`` in all, else the job escalates to a new attempt);
4. :meth:`~deai.protocol.jobs.refereed.Dispute.judge` names winners and liars, and the run accepts
   the winners with ``accept_result``: the ledger slashes every committed required executor not
   accepted (``wrong result``). Each dispute is kept in :attr:`RefereedRun.disputes` (rounds, the
   step re-executed, the referee and the ones redrawn, who lied and why) for the report.

Three or more distinct outputs are settled as a tournament: the surviving claim disputes the next.
:class:`DelegatedDriver` steps such runs in process (tests, benchmarks) with the
:class:`~deai.protocol.jobs.driver.JobDriver`'s executors as parties and referees; a drawn referee
missing from that mapping is a referee that does not answer.

Limits: bisection compares hashes, so it needs the two parties' steps to be bit-identical when both
are honest -- true for one library build and CPU family whatever the thread settings (the kind pins
one intra-op thread and deterministic algorithms). Across builds honest trajectories differ from step
0: the referee then finds both parties within tolerance of its step and slashes nobody, and a cheater
on another build is caught only if its cheat exceeds the tolerance at step 0.

Over the network (``by_resolver = True``: the delegated-training task mode,
:mod:`deai.protocol.task.delegated_round`) there are no in-process executors and no new message:
the jobs carry ``params.keep_states``, so each party's revealed output holds its state at every
inner leaf and the agreed state and the claims are read from there (hash- and layout-checked like an
upload); the referee is the resolver itself -- the task's coordinator, which the ledger already
trusts with ``accept_result`` -- re-executing the one segment from the blobs it holds. A referee
drawn among the compute providers as an ordinary one-segment ``train_steps`` job
(``params.segment``) needs the ledger's draw to exclude the parties; ``docs/verification.md`` lists it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from deai.core.accounts import Account
from deai.core.blobs import BlobStore
from deai.core.encoding import from_hex, sha256
from deai.core.errors import DeaiError
from deai.learn.training import deterministic
from deai.ledger.base import Ledger
from deai.ledger.draw import draw_executors
from deai.ledger.rules.jobs import REFEREED, required_executors
from deai.ledger.txs import AcceptResult
from deai.protocol.jobs.compare import CompareRule
from deai.protocol.jobs.driver import JobDriver
from deai.protocol.jobs.executor import Executor
from deai.protocol.jobs.kinds.base import Tensors, load_inputs
from deai.protocol.jobs.kinds.train_steps import StepProgram
from deai.protocol.jobs.merkle import StepTree
from deai.protocol.jobs.refereed import Dispute
from deai.protocol.jobs.run import Attempt, JobRun
from deai.protocol.jobs.spec import JobSpec
from deai.protocol.jobs.trajectory import Trainer, hashes_of, leaf_state, open_hashes, state_hash

__all__ = [
    "REFEREE_RULE",
    "DelegatedDriver",
    "DisputeRecord",
    "RefereedRun",
    "draw_referee",
    "party_state",
    "program_of",
    "reexecute",
    "run_from_json",
]

REFEREE_RULE = CompareRule.tolerance(rtol=1e-4, atol=1e-6)
"""How close a party's state after the re-executed segment must be to the referee's: ~1,000 times
the largest one-step deviation measured between thread counts 1-4 with the pinning off (relative
~1e-7, ``benchmarks/delegated_training.py``, ``docs/verification.md``), far below any cheat here."""


def program_of(store: BlobStore, spec: JobSpec) -> StepProgram:
    """The job's step program, from its inputs fetched (and hash-checked) from ``store``."""
    with deterministic(threads=1):
        return StepProgram.from_job(load_inputs(store, spec), spec.params, spec.seed)


def party_state(executor: Executor, spec: JobSpec, leaf: int) -> Tensors:
    """The state ``executor`` claims at ``leaf`` of job ``spec``: from the trainer it kept (the
    training executors and cheaters keep one per job), else recomputed honestly from the spec."""
    trainer = getattr(executor, "trainers", {}).get(spec.job_id)
    if trainer is None:
        trainer = Trainer(program_of(executor.store, spec), every=spec.params["commit_every"])
    with deterministic(threads=1):
        return trainer.state_at(leaf)


def reexecute(referee: Executor, spec: JobSpec, state: Tensors, start: int, stop: int) -> Tensors:
    """The referee's work: steps ``[start, stop)`` of the job from ``state``, pinned like the kind."""
    program = program_of(referee.store, spec)
    with deterministic(threads=1):
        return program.run(state, start, stop)


def draw_referee(ledger: Ledger, job_id: str, fee: int, exclude: set[str], n: int) -> str | None:
    """The ``n``-th referee draw for ``job_id``: a staked compute provider outside ``exclude``,
    weighted like an executor draw, seeded by the ledger head and the job (so it is fixed once the
    dispute starts and nobody picks it). None when nobody is left."""
    pool = [(a, w) for a, w in ledger.eligible_executors("compute_provider", fee) if a not in exclude]
    if not pool:
        return None
    seed = sha256(
        b"deai-referee" + from_hex(ledger.head().hash, length=32, what="head")
        + from_hex(job_id, length=32, what="job id") + n.to_bytes(4, "big")
    )  # fmt: skip
    return draw_executors(pool, seed, 1)[0]


@dataclass
class DisputeRecord:
    """One dispute of a refereed job, as the report shows it."""

    job: str
    parties: list[str]
    winners: list[str]
    liars: list[str]
    rounds: int
    steps_reexecuted: int
    step: int | None
    referee: str | None
    redrawn: list[str]
    reason: str

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class RefereedRun(JobRun):
    """A :class:`JobRun` whose disagreements are settled by a refereed dispute (module doc).
    ``parties`` and ``referees`` map addresses to the executors the resolver can reach."""

    r: int = 2
    quorum: int = REFEREED
    rule: CompareRule = REFEREE_RULE
    max_referees: int = 3
    disputes: list[DisputeRecord] = field(default_factory=list)
    by_resolver: bool = False  # network mode: states from the revealed outputs, the resolver referees
    parties: Mapping[str, Executor] = field(default_factory=dict, repr=False, compare=False)
    referees: Mapping[str, Executor] = field(default_factory=dict, repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        out = {**super().to_json(), "disputes": [d.to_json() for d in self.disputes]}
        return {**out, "by_resolver": self.by_resolver, "max_referees": self.max_referees}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RefereedRun:
        run = super().from_json(data)
        run.disputes = [DisputeRecord(**d) for d in data.get("disputes", [])]
        run.by_resolver = bool(data.get("by_resolver", False))
        run.max_referees = int(data.get("max_referees", run.max_referees))
        return run

    def _decide(self, ledger: Ledger, store: BlobStore, creator: Account) -> bool:
        att = self.attempts[-1]
        job = ledger.job(att.job)
        if job is None or job.status != "open" or not job.replicated:
            return super()._decide(ledger, store, creator)
        outs = self._checked(ledger, store, att.job, required_executors(job))
        valid = {e: o for e, o in outs.items() if o is not None}
        digest = {e: ledger.revealed(att.job, e) for e in valid}
        if len(set(digest.values())) < 2:
            return super()._decide(ledger, store, creator)
        reps: dict[str, str] = {}  # one executor per distinct output
        for e, d in digest.items():
            reps.setdefault(str(d), e)
        contenders = list(reps.values())
        champion: str | None = contenders[0]
        won: set[str] = set()
        liars: set[str] = set()
        for challenger in contenders[1:]:
            if champion is None:
                champion = challenger
                continue
            rec = self._dispute(ledger, store, creator, att, champion, challenger, valid)
            self.disputes.append(rec)
            won |= set(rec.winners)
            liars |= set(rec.liars)
            champion = next((p for p in (champion, challenger) if p in rec.winners), None)
        good = {digest[e] for e in won - liars}  # won every dispute it was in
        names = [e for e in valid if digest[e] in good]
        if not names:
            return self._escalate()
        self._accept_named(ledger, creator, att, names)
        return True

    def _accept_named(self, ledger: Ledger, creator: Account, att: Attempt, names: list[str]) -> None:
        """Accept ``names`` in the disputed attempt ``att``. Earlier attempts still open (a first
        attempt escalated without a verdict) go to the ledger's own ``resolve_job`` after the grace:
        no dispute judged them, so only their withheld reveals are faulted there."""
        self.stale += [a.job for a in self.attempts if a is not att and a.job not in self.stale]
        resolved = ledger.send(creator, AcceptResult(job=att.job, accepted=tuple(names)))
        data = resolved.event("job_resolved").data
        self.paid += len(data["accepted"])
        digest = ledger.revealed(att.job, names[0])
        assert digest is not None  # an accepted executor revealed its output
        self.output, self.output_job = digest.removeprefix("0x"), att.job
        self.accepted += [a for a in data["accepted"] if a not in self.accepted]
        self.faulted += [f for f in data["faulted"] if f not in self.faulted]
        self.status = "accepted"

    def _dispute(
        self,
        ledger: Ledger,
        store: BlobStore,
        creator: Account,
        att: Attempt,
        a: str,
        b: str,
        outputs: Mapping[str, Tensors],
    ) -> DisputeRecord:
        spec = self.spec_of(att)
        program = program_of(store, spec)
        hashes = {p: hashes_of(outputs[p]) for p in (a, b)}
        trees = {p: StepTree(h) for p, h in hashes.items()}
        dispute = Dispute(
            program.steps, state_hash(program.initial), {p: t.root for p, t in trees.items()},
            every=spec.params["commit_every"],
        )  # fmt: skip
        while dispute.query():  # the openings are the committed hashes: no message, no deadline
            for p in dispute.parties:
                if dispute.query():
                    dispute.answer(p, [open_hashes(hashes[p], i, trees[p]) for i in dispute.query()])
        referee: str | None = None
        truth: Tensors | None = None
        redrawn: list[str] = []
        if dispute.outcome is None:
            lo = dispute.lo
            state = program.initial if lo == 0 else self._upload(spec, dispute, lo, program.initial, outputs)
            if state is None:
                dispute.timeout()
            else:
                claims = {p: self._claim(spec, dispute, p, outputs, program.initial) for p in dispute.parties}
                if self.by_resolver:  # the resolver re-executes the segment from the blobs it holds
                    referee = creator.address
                    with deterministic(threads=1):
                        truth = program.run(state, *dispute.segment)
                else:
                    referee, truth = self._referee(
                        ledger, spec, att.job, state, dispute, {creator.address}, redrawn
                    )
                if truth is not None:
                    dispute.judge(truth, claims, self.rule)
        out = dispute.outcome
        if out is None:  # no referee answered: nobody is a liar, the job escalates
            return DisputeRecord(
                att.job, [a, b], [], [], dispute.rounds, 0, None, None, redrawn, "no referee answered"
            )
        return DisputeRecord(
            att.job, [a, b], out.winners, out.liars, out.rounds, out.steps_reexecuted, out.step, referee,
            redrawn, out.reason,
        )  # fmt: skip

    def _referee(
        self,
        ledger: Ledger,
        spec: JobSpec,
        job_id: str,
        state: Tensors,
        dispute: Dispute,
        exclude: set[str],
        redrawn: list[str],
    ) -> tuple[str | None, Tensors | None]:
        """Draw referees until one answers (``redrawn`` collects those that did not)."""
        start, stop = dispute.segment
        while len(redrawn) < self.max_referees:
            referee = draw_referee(
                ledger, job_id, self.fee, exclude | set(dispute.parties) | set(redrawn), len(redrawn)
            )
            if referee is None:
                return None, None
            ex = self.referees.get(referee)
            if ex is None:  # the drawn referee does not answer: the next draw replaces it
                redrawn.append(referee)
                continue
            return referee, reexecute(ex, spec, state, start, stop)
        return None, None

    def _state(
        self, spec: JobSpec, party: str, leaf: int, outputs: Mapping[str, Tensors], like: Tensors
    ) -> Tensors | None:
        """The state ``party`` gives for ``leaf``: from its revealed output (``by_resolver``) or an
        upload by its in-process executor; None when it gives none or one of another layout (two
        liars agreeing on a malformed state cannot crash the referee)."""
        try:
            if self.by_resolver:
                state = leaf_state(outputs[party], leaf, list(like))
            else:
                ex = self.parties.get(party)
                state = None if ex is None else party_state(ex, spec, leaf)
        except (DeaiError, KeyError):
            return None
        return state if state is not None and _layout(state) == _layout(like) else None

    def _upload(
        self, spec: JobSpec, dispute: Dispute, leaf: int, like: Tensors, outputs: Mapping[str, Tensors]
    ) -> Tensors | None:
        """The agreed state at ``leaf``, from the first party whose state hashes right."""
        for p in dispute.parties:
            state = self._state(spec, p, leaf, outputs, like)
            if state is not None and state_hash(state) == dispute.agreed_hash():
                return state
        return None

    def _claim(
        self, spec: JobSpec, dispute: Dispute, party: str, outputs: Mapping[str, Tensors], like: Tensors
    ) -> Tensors | None:
        """``party``'s state at leaf ``hi`` if it hashes to its committed claim."""
        state = self._state(spec, party, dispute.hi, outputs, like)
        return state if state is not None and state_hash(state) == dispute.claim(party) else None


def run_from_json(data: dict[str, Any]) -> JobRun:
    """A saved run: a :class:`RefereedRun` if it was one (it keeps its disputes), else a :class:`JobRun`."""
    return RefereedRun.from_json(data) if "disputes" in data else JobRun.from_json(data)


def _layout(state: Tensors) -> dict[str, tuple[tuple[int, ...], Any]]:
    return {k: (tuple(v.shape), v.dtype) for k, v in state.items()}


class DelegatedDriver(JobDriver):
    """A :class:`JobDriver` whose runs are :class:`RefereedRun`\\ s with its executors as parties
    and referees (``referees`` overrides who can answer as a referee)."""

    def __init__(self, *args: Any, referees: Mapping[str, Executor] | None = None, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.referees = referees

    def make_run(self, spec: JobSpec, purpose: str = "train") -> JobRun:
        cfg = self.config
        return RefereedRun(
            spec, purpose, r=cfg.r, p=cfg.p, fee=cfg.fee, extra=cfg.extra,
            commit_ms=cfg.commit_window_ms, reveal_ms=cfg.reveal_window_ms, task=cfg.task,
            max_attempts=cfg.max_attempts if cfg.escalate else 1, role=cfg.role, model=cfg.model,
            parties=self.executors,
            referees=self.executors if self.referees is None else self.referees,
        )  # fmt: skip
