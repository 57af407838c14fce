"""The coordinator: drives one verified job through the ledger, from registration to resolution.

It plays the job creator and the job's designated resolver; executors are driven through their
phase methods (:class:`~deai.protocol.jobs.executor.Executor`) and submit their own signed
transactions. Time is the ledger's logical clock (a :class:`~deai.ledger.base.ManualClock` the
coordinator advances): messages are processed in the order of the time they are sent, so late
commits and reveals reach the ledger late and are refused there. One round:

1. ``register_job`` with the fee escrow, the replication commitment
   (:class:`~deai.protocol.jobs.sampling.ReplicationChoice`) and ``resolver`` = the creator; the
   ledger draws ``r`` executors (recheck with :func:`verify_draw`). The creator activates the
   primary, or all ``r`` when replicated; the others are standbys that commit decoys.
2. Commit polls (start, mid-window), then the creator reveals its replication choice.
3. Reveal polls (commit deadline, mid-window). Each reveal the ledger accepts is checked off the
   ledger: upload present, hashing to the digest, safetensors, the kind's names/shapes/dtypes, finite
   (:func:`~deai.protocol.jobs.commit_reveal.check_upload`). Refused messages are recorded with
   their error; the executor then counts as silent.
4. Decision (:func:`~deai.protocol.jobs.compare.decide`) over the required executors.

If the valid outputs disagree or there is no majority, the job **escalates**: the same computation
is registered again (``nonce + 1``) with ``r + extra`` executors, always replicated, and the decision
is taken over both rounds together; a bloc that held a majority of the first ``r`` must then also
hold one of all ``2r + extra``. Each round is resolved with ``accept_result`` naming its executors
that agree with the final winner: when they are a strict majority of the round's required
executors, the ledger slashes the others that committed; when they are an honest minority of
round one (outvoted there by a bloc the escalation overturned), the ledger pays them and slashes
nobody in that round (the bloc is slashed in the escalated round). Without any final majority,
every round is left to ``resolve_job`` after the grace period, which refunds without slashing
anyone who revealed. Jobs are registered with ``quorum = 0`` (a strict majority, the ledger's
floor); the comparison the resolver acts on is public (blobs and reveals), so anyone can recheck
its ``accept_result``.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from deai.core.accounts import Account
from deai.core.blobs import BlobStore
from deai.core.errors import DeaiError
from deai.ledger.base import Ledger, ManualClock
from deai.ledger.config import COMPUTE
from deai.ledger.draw import draw_executors, draw_seed
from deai.ledger.txs import AcceptResult, Commit, RegisterJob, ResolveJob, Reveal, RevealReplication
from deai.protocol.jobs.commit_reveal import check_upload
from deai.protocol.jobs.compare import CompareRule, Decision, agrees, decide
from deai.protocol.jobs.executor import Executor, JobView
from deai.protocol.jobs.kinds.base import Tensors, get_kind, load_inputs
from deai.protocol.jobs.sampling import ReplicationChoice
from deai.protocol.jobs.spec import JobSpec

__all__ = ["Coordinator", "JobConfig", "JobReport", "Refusal", "verify_draw"]


@dataclass(frozen=True)
class JobConfig:
    """``r`` executors drawn, replicated with probability ``p``; ``extra`` more on escalation."""

    fee: int = 10
    r: int = 3
    p: float = 1.0
    extra: int = 2
    escalate: bool = True
    commit_window_ms: int = 60_000
    reveal_window_ms: int = 60_000
    role: str = COMPUTE
    model: str | None = None  # a registered model: each paid fee's royalty part goes to its pool


@dataclass(frozen=True)
class Refusal:
    """A message refused (by the ledger or the upload checks): who, which step, and why."""

    executor: str
    step: str
    error: str
    reason: str


@dataclass
class JobReport:
    """What happened to one job (all rounds). ``status`` is the first round's ledger status."""

    job_id: str
    replicated: bool
    executors: list[str]
    required: list[str]
    accepted: list[str] = field(default_factory=list)
    faulted: list[str] = field(default_factory=list)
    slashed: dict[str, int] = field(default_factory=dict)
    refusals: list[Refusal] = field(default_factory=list)
    status: str = "open"
    escalated: bool = False
    executions: int = 0
    output: Tensors | None = None
    decision: Decision | None = None


def verify_draw(
    candidates: list[tuple[str, int]], head_hash: str, job_id: str, job: Mapping[str, Any]
) -> bool:
    """Recompute the ledger's draw of ``job`` from the (address, weight) candidates and the log head
    before its registration; True iff it gives the same executors in the same order."""
    seed = draw_seed(head_hash, job_id)
    return draw_executors(candidates, seed, len(job["executors"])) == list(job["executors"])


@dataclass
class _Round:
    spec: JobSpec
    choice: ReplicationChoice
    executors: list[str]
    commit_deadline: int
    reveal_deadline: int
    required: list[str] = field(default_factory=list)
    outputs: dict[str, Tensors] = field(default_factory=dict)


class Coordinator:
    """Runs jobs on ``ledger`` for ``creator``; ``executors`` maps every provider address to its driver."""

    def __init__(
        self,
        ledger: Ledger,
        clock: ManualClock,
        store: BlobStore,
        creator: Account,
        executors: Mapping[str, Executor],
        *,
        rng: random.Random | None = None,
        config: JobConfig | None = None,
    ) -> None:
        self.ledger, self.clock, self.store, self.creator = ledger, clock, store, creator
        self.executors = dict(executors)
        self.rng = rng or random.Random()
        self.config = config or JobConfig()

    # -- time --------------------------------------------------------------------------------------

    def _at(self, t: int) -> None:
        self.clock.now = max(self.clock.now, t)

    def _events(self, schedule: list[tuple[int, int, Callable[[], None]]]) -> None:
        """Run scheduled actions in time order; an action may schedule more."""
        while schedule:
            t, _, action = heapq.heappop(schedule)
            self._at(t)
            action()

    # -- one job -----------------------------------------------------------------------------------

    def run(self, spec: JobSpec) -> JobReport:
        """Register, execute, compare and resolve ``spec``; escalate on disagreement."""
        cfg = self.config
        kind = get_kind(spec.kind)
        rule = kind.compare_rule(spec.params)
        layout = kind.output_layout(load_inputs(self.store, spec), spec.params)
        self.store.put(spec.to_bytes())  # executors fetch the spec by its id
        report = JobReport(spec.job_id, False, [], [])
        first = self._round(spec, cfg.p, cfg.r, layout, report)
        report.replicated, report.executors, report.required = (
            first.choice.replicated,
            first.executors,
            first.required,
        )
        rounds = [first]
        decision = self._decide(rounds, rule)
        if cfg.escalate and (decision.winner is None or not decision.unanimous):
            report.escalated = True
            again = replace(spec, nonce=spec.nonce + 1)
            self.store.put(again.to_bytes())
            pool = len(self.ledger.eligible_executors(cfg.role, cfg.fee, exclude=self.creator.address))
            rounds.append(self._round(again, 1.0, min(cfg.r + cfg.extra, pool), layout, report))
            decision = self._decide(rounds, rule)
        report.decision = decision
        self._resolve(rounds, decision, rule, report)
        report.status = self.ledger.job(spec.job_id)["status"]
        return report

    def _voters(self, rounds: list[_Round]) -> list[tuple[str, Tensors | None]]:
        """Each required provider once (drawn in both rounds, it still has one vote), first valid output."""
        votes: dict[str, Tensors | None] = {}
        for rd in rounds:
            for e in rd.required:
                if votes.get(e) is None:
                    votes[e] = rd.outputs.get(e)
        return list(votes.items())

    def _decide(self, rounds: list[_Round], rule: CompareRule) -> Decision:
        return decide([out for _, out in self._voters(rounds)], rule)

    def _round(self, spec: JobSpec, p: float, r: int, layout, report: JobReport) -> _Round:
        cfg, job_id = self.config, spec.job_id
        choice = ReplicationChoice.draw(job_id, p, r, self.rng)
        tx = RegisterJob(
            job=job_id,
            task=None,
            job_type=spec.kind,
            inputs=tuple("0x" + d for d in spec.inputs),
            fee=cfg.fee,
            executors=r,
            replication=choice.commitment,
            commit_window_ms=cfg.commit_window_ms,
            reveal_window_ms=cfg.reveal_window_ms,
            role=cfg.role,
            resolver=self.creator.address,
            quorum=0,
            model=cfg.model,
        )
        self.ledger.send(self.creator, tx)
        job = self.ledger.job(job_id)
        rd = _Round(spec, choice, list(job["executors"]), job["commit_deadline"], job["reveal_deadline"])
        active = {rd.executors[i] for i in choice.active(r)}
        rd.required = [e for e in rd.executors if e in active]
        t0, schedule, seq = self.clock.now, [], iter(range(1 << 30))

        def push(t: int, action: Callable[[], None]) -> None:
            heapq.heappush(schedule, (t, next(seq), action))

        def view(e: str) -> JobView:
            commitments = {a: c for a in rd.executors if (c := self.ledger.commitment(job_id, a)) is not None}
            return JobView(
                spec,
                tuple(rd.executors),
                rd.commit_deadline,
                rd.reveal_deadline,
                self.clock.now,
                e in active,
                commitments,
                dict(reveals),
            )

        reveals: dict[str, tuple[str, str]] = {}
        pending_commit, pending_reveal = set(rd.executors), set(rd.executors)

        def send(e: str, step: str, tx_obj, on_ok: Callable[[], None] | None = None) -> None:
            try:
                self.ledger.send(self.executors[e].account, tx_obj)
            except DeaiError as exc:
                report.refusals.append(Refusal(e, step, type(exc).__name__, str(exc)))
                return
            if on_ok:
                on_ok()

        def poll_commits() -> None:
            for e in sorted(pending_commit):
                msg = self.executors[e].commit(view(e))
                if msg is not None:
                    pending_commit.discard(e)
                    push(
                        msg.at,
                        lambda e=e, m=msg: send(e, "commit", Commit(job=job_id, commitment=m.commitment)),
                    )

        def poll_reveals() -> None:
            for e in sorted(pending_reveal):
                if self.ledger.commitment(job_id, e) is None:
                    continue
                msg = self.executors[e].reveal(view(e))
                if msg is not None:
                    pending_reveal.discard(e)

                    def ok(e=e, m=msg) -> None:
                        reveals[e] = (m.digest, m.salt)

                    push(
                        msg.at,
                        lambda e=e, m=msg, ok=ok: send(
                            e, "reveal", Reveal(job=job_id, digest=m.digest, salt=m.salt), ok
                        ),
                    )

        def reveal_choice() -> None:
            self.ledger.send(
                self.creator,
                RevealReplication(
                    job=job_id, replicated=choice.replicated, primary=choice.primary, salt=choice.salt
                ),
            )

        push(t0, poll_commits)
        push(t0 + cfg.commit_window_ms // 2, poll_commits)
        push(rd.commit_deadline, reveal_choice)
        push(rd.commit_deadline, poll_reveals)
        push(rd.commit_deadline + cfg.reveal_window_ms // 2, poll_reveals)
        self._events(schedule)
        self._at(rd.reveal_deadline + 1)
        for e in rd.required:
            digest = self.ledger.revealed(job_id, e)
            if digest is None:
                continue
            try:
                rd.outputs[e] = check_upload(self.store, digest, layout)
            except DeaiError as exc:
                report.refusals.append(Refusal(e, "upload", type(exc).__name__, str(exc)))
        report.executions += sum(1 for e in rd.required if e in rd.outputs)
        return rd

    def _resolve(
        self, rounds: list[_Round], decision: Decision, rule: CompareRule, report: JobReport
    ) -> None:
        winner = None if decision.winner is None else self._voters(rounds)[decision.winner][1]
        report.output = winner
        late = False
        for rd in rounds:
            accepted = [
                e
                for e in rd.required
                if winner is not None and e in rd.outputs and agrees(rd.outputs[e], winner, rule)
            ]
            if accepted:
                receipt = self.ledger.send(
                    self.creator, AcceptResult(job=rd.spec.job_id, accepted=tuple(accepted))
                )
            else:  # no final majority (or none of it in this round): the ledger's own rule, after grace
                if not late:
                    self._at(max(r.reveal_deadline for r in rounds) + self.ledger.config.resolve_grace_ms)
                    late = True
                receipt = self.ledger.send(self.creator, ResolveJob(job=rd.spec.job_id))
            resolved = receipt.event("job_resolved").data
            report.accepted += [a for a in resolved["accepted"] if a not in report.accepted]
            report.faulted += [f for f in resolved["faulted"] if f not in report.faulted]
            for ev in receipt.events:
                if ev.kind == "slashed":
                    report.slashed[ev.data["account"]] = (
                        report.slashed.get(ev.data["account"], 0) + ev.data["amount"]
                    )
