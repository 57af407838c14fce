"""A blocking driver of the job engine, for tests, benchmarks and in-process simulations.

:class:`JobDriver` runs one job to the end on a :class:`~deai.ledger.base.ManualClock`: it steps
the network's engine (:class:`~deai.protocol.jobs.run.JobRun`, the creator's side) and the
in-process executors (:class:`~deai.protocol.jobs.executor.Executor`, honest or cheating), each
submitting its own signed transactions, until the run is decided and its stale attempts resolved.
It re-implements no phase: registration, the replication reveal, checks, the decision, escalation
and resolution are the engine's. Time advances only to the moments something can happen (a
message an executor sends late, a window's middle, the tick after a deadline, the end of the
grace period), so a job costs no waiting. The creator is the job's resolver: list it in the
genesis ``config.resolvers`` (or pass a ``task`` whose coordinator it is).
"""

from __future__ import annotations

import functools
import heapq
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from deai.core.accounts import Account
from deai.core.blobs import BlobStore
from deai.core.errors import DeaiError
from deai.ledger.base import Ledger, ManualClock
from deai.ledger.config import COMPUTE
from deai.ledger.draw import draw_executors, draw_seed
from deai.ledger.records import JobRecord
from deai.ledger.rules.jobs import required_executors
from deai.ledger.tx import Tx
from deai.ledger.txs import Commit, Reveal
from deai.protocol.jobs.commit_reveal import check_upload
from deai.protocol.jobs.executor import Executor, JobView, RevealMsg
from deai.protocol.jobs.kinds.base import Tensors
from deai.protocol.jobs.run import Attempt, JobRun
from deai.protocol.jobs.spec import JobSpec

__all__ = ["JobConfig", "JobDriver", "JobReport", "Refusal", "verify_draw"]


@dataclass(frozen=True)
class JobConfig:
    """``r`` executors drawn, replicated with probability ``p``; ``extra`` more on escalation, at
    most ``max_attempts`` attempts (``escalate=False``: one)."""

    fee: int = 10
    r: int = 3
    p: float = 1.0
    extra: int = 2
    escalate: bool = True
    max_attempts: int = 4
    commit_window_ms: int = 60_000
    reveal_window_ms: int = 60_000
    role: str = COMPUTE
    model: str | None = None  # a registered model: each paid fee's royalty part goes to its pool
    task: str | None = None  # a task whose coordinator is the creator: fees from its budget


@dataclass(frozen=True)
class Refusal:
    """A message refused (by the ledger or the upload checks): who, which step, and why."""

    executor: str
    step: str
    error: str
    reason: str


@dataclass
class JobReport:
    """What happened to one job over all its attempts. ``replicated``, ``executors``, ``required``
    and ``status`` describe the first attempt; ``accepted``/``faulted``/``slashed`` all of them."""

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
    run: JobRun | None = None


def verify_draw(candidates: list[tuple[str, int]], head_hash: str, job_id: str, job: JobRecord) -> bool:
    """Recompute the ledger's draw of ``job`` from the (address, weight) candidates and the log head
    before its registration; True iff it gives the same executors in the same order."""
    seed = draw_seed(head_hash, job_id)
    return draw_executors(candidates, seed, len(job.executors)) == list(job.executors)


class JobDriver:
    """Runs jobs on ``ledger`` for ``creator``; ``executors`` maps every provider address to its
    in-process executor. ``config`` and ``executors`` may be changed between jobs."""

    def __init__(
        self,
        ledger: Ledger,
        clock: ManualClock,
        store: BlobStore,
        creator: Account,
        executors: Mapping[str, Executor],
        *,
        config: JobConfig | None = None,
    ) -> None:
        self.ledger, self.clock, self.store, self.creator = ledger, clock, store, creator
        self.executors = dict(executors)
        self.config = config or JobConfig()
        self._seq = 0  # events read so far (slashes are reported from the ledger's events)

    def make_run(self, spec: JobSpec, purpose: str = "job") -> JobRun:
        """The engine's run for ``spec`` under :attr:`config`."""
        cfg = self.config
        return JobRun(
            spec, purpose, r=cfg.r, p=cfg.p, fee=cfg.fee, extra=cfg.extra,
            commit_ms=cfg.commit_window_ms, reveal_ms=cfg.reveal_window_ms, task=cfg.task,
            max_attempts=cfg.max_attempts if cfg.escalate else 1, role=cfg.role, model=cfg.model,
        )  # fmt: skip

    def run(self, spec: JobSpec) -> JobReport:
        """Drive ``spec`` to its decision and resolution; see the module docstring."""
        self._seq = max([self._seq, *(e.seq + 1 for e in self.ledger.events(self._seq))])
        run = self.make_run(spec)
        refusals: list[Refusal] = []
        _Executors(self, run, refusals).drive()
        return self._report(run, refusals)

    def _report(self, run: JobRun, refusals: list[Refusal]) -> JobReport:
        first = self.ledger.job(run.attempts[0].job) if run.attempts else None
        jobs = {a.job for a in run.attempts}
        report = JobReport(
            job_id=run.attempts[0].job if run.attempts else run.spec.job_id,
            replicated=bool(first and first.replicated),
            executors=list(first.executors) if first else [],
            required=required_executors(first) if first and first.replicated is not None else [],
            accepted=list(run.accepted),
            faulted=list(run.faulted),
            status=first.status if first else "unregistered",
            escalated=run.escalated,
            executions=run.valid_outputs(),
            run=run,
        )
        for note in run.refusals:  # "who: Error: reason" from the engine's upload checks
            who, error, reason = [*note.split(": ", 2), "", ""][:3]
            refusals.append(Refusal(who, "register" if who == "register" else "upload", error, reason))
        report.refusals = refusals
        for ev in self.ledger.events(self._seq):
            self._seq = ev.seq + 1
            if ev.kind == "slashed" and ev.data.get("job") in jobs:
                who = ev.data["account"]
                report.slashed[who] = report.slashed.get(who, 0) + ev.data["amount"]
        if run.output is not None:
            report.output = check_upload(self.store, "0x" + run.output, run.layout_of(self.store))
        return report


class _Executors:
    """The in-process executors' side of one run: poll, send (late messages at their time)."""

    def __init__(self, driver: JobDriver, run: JobRun, refusals: list[Refusal]) -> None:
        self.d, self.run, self.refusals = driver, run, refusals
        self.later: list[tuple[int, int, Callable[[], None]]] = []
        self.seq = 0
        self.committed: dict[str, set[str]] = {}
        self.revealed: dict[str, set[str]] = {}
        self.reveals: dict[str, dict[str, tuple[str, str]]] = {}

    def drive(self) -> None:
        d, run = self.d, self.run
        while True:
            now = d.clock.now
            progress = False
            while self.later and self.later[0][0] <= now:
                heapq.heappop(self.later)[2]()
                progress = True
            while run.step(d.ledger, d.store, d.creator, now):
                progress = True
            progress |= self._poll(now)
            progress |= run.resolve_stale(d.ledger, d.creator, now)
            if run.done and not run.stale and not self.later:
                return
            if not progress:
                nxt = self._next_time(now)
                if nxt is None:
                    raise DeaiError(f"job {run.spec.job_id}: nothing can happen any more ({run.status})")
                d.clock.now = nxt

    def _send(self, e: str, step: str, tx: Tx, on_ok: Callable[[], None] | None = None) -> None:
        try:
            self.d.ledger.send(self.d.executors[e].account, tx)
        except DeaiError as exc:
            self.refusals.append(Refusal(e, step, type(exc).__name__, str(exc)))
            return
        if on_ok is not None:
            on_ok()

    def _at(self, at: int, now: int, action: Callable[[], None]) -> None:
        if at <= now:
            action()
        else:
            self.seq += 1
            heapq.heappush(self.later, (at, self.seq, action))

    def _open_jobs(self) -> list[tuple[Attempt, JobRecord]]:
        out = []
        for att in self.run.attempts:
            job = self.d.ledger.job(att.job)
            if job is not None and job.status == "open":
                out.append((att, job))
        return out

    def _poll(self, now: int) -> bool:
        d, progress = self.d, False
        for att, job in self._open_jobs():
            job_id = att.job
            spec = self.run.spec_of(att)
            committed = self.committed.setdefault(job_id, set())
            revealed = self.revealed.setdefault(job_id, set())
            reveals = self.reveals.setdefault(job_id, {})
            active = self.run.active(d.creator, job_id)
            executors = list(job.executors)
            open_ = job.commits == len(executors) or now >= job.commit_deadline
            for i, e in enumerate(executors):
                ex = d.executors.get(e)
                if ex is None:
                    continue
                view = JobView(
                    spec, tuple(executors), job.commit_deadline, job.reveal_deadline, now,
                    i in active,
                    {a: c for a in executors if (c := d.ledger.commitment(job_id, a)) is not None},
                    dict(reveals),
                )  # fmt: skip
                if e not in committed and now < job.commit_deadline:
                    msg = ex.commit(view)
                    if msg is not None:
                        committed.add(e)
                        commit = Commit(job=job_id, commitment=msg.commitment)
                        self._at(msg.at, now, functools.partial(self._send, e, "commit", commit))
                        progress = True
                elif (
                    e not in revealed
                    and open_
                    and now < job.reveal_deadline
                    and d.ledger.commitment(job_id, e) is not None
                ):
                    rmsg = ex.reveal(view)
                    if rmsg is not None:
                        revealed.add(e)
                        reveal = Reveal(job=job_id, digest=rmsg.digest, salt=rmsg.salt)

                        def ok(e: str = e, job_id: str = job_id, m: RevealMsg = rmsg) -> None:
                            self.reveals[job_id][e] = (m.digest, m.salt)

                        self._at(rmsg.at, now, functools.partial(self._send, e, "reveal", reveal, ok))
                        progress = True
        return progress

    def _next_time(self, now: int) -> int | None:
        times = [self.later[0][0]] if self.later else []
        for _, job in self._open_jobs():
            cd, rd = job.commit_deadline, job.reveal_deadline
            times += [cd - self.run.commit_ms // 2, cd - 1, cd + 1, rd - self.run.reveal_ms // 2, rd + 1]
        for job_id in self.run.stale:
            stale = self.d.ledger.job(job_id)
            if stale is not None and stale.status == "open":
                times.append(stale.reveal_deadline + self.d.ledger.config.resolve_grace_ms)
        later = [t for t in times if t > now]
        return min(later) if later else None
