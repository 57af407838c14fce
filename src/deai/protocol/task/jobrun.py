"""One verified job driven through the ledger by events and time, not by a blocking loop.

:class:`~deai.protocol.jobs.coordinator.Coordinator` runs a job to the end in one call with its
executors in the same process. On a network the executors are other processes that poll for their
assignments, so the coordinator side becomes a state machine: :meth:`JobRun.step` looks at the
ledger at time ``now`` and takes the next action, if any is due:

1. register the job (the ledger escrows the fees -- from the task's budget for a task's job, so
   the coordinator never pays them itself -- and draws the executors) with the creator's
   hidden-sampling commitment; the choice is derived from a signature of the creator over the job
   id, so it is secret, reproducible and survives a restart without being stored. A budget that
   cannot escrow the fees fails the run (``InsufficientEscrow`` in :attr:`JobRun.refusals`);
2. once every drawn executor committed, or the commit deadline passed: reveal the choice;
3. once every required executor revealed, or the reveal deadline passed: fetch and check each
   revealed upload (:func:`~deai.protocol.jobs.commit_reveal.check_upload`), compare
   (:func:`~deai.protocol.jobs.compare.decide`) and ``accept_result`` naming the majority -- the
   ledger pays them and slashes the other required executors that committed (a drawn executor
   that never committed is only reported ``missed``);
4. without a majority (e.g. the only active executor died): a new attempt (the spec with
   ``nonce + 1``), always replicated with ``r + extra`` executors, drawn afresh. The failed attempt is
   listed in :attr:`JobRun.stale`, for the caller to ``resolve_job`` after the ledger's grace period
   (which slashes executors that committed and withheld their reveal, and refunds the fee).

Every action first checks the ledger, so replaying a step after a crash never registers, reveals or
accepts twice. The state is plain JSON (:meth:`to_json`).
"""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass, field
from typing import Any

from deai.core.accounts import Account
from deai.core.blobs import BlobStore
from deai.core.encoding import from_hex, sha256
from deai.core.errors import DeaiError
from deai.ledger.base import Ledger
from deai.ledger.config import COMPUTE
from deai.ledger.errors import InsufficientBalance, InsufficientEscrow
from deai.ledger.rules.jobs import required_executors
from deai.ledger.txs import AcceptResult, RegisterJob, RevealReplication
from deai.protocol.jobs.commit_reveal import check_upload
from deai.protocol.jobs.compare import decide
from deai.protocol.jobs.kinds.base import Layout, get_kind, load_inputs
from deai.protocol.jobs.sampling import ReplicationChoice
from deai.protocol.jobs.spec import JobSpec

__all__ = ["JobRun", "replication_choice"]


def replication_choice(creator: Account, job_id: str, p: float, r: int) -> ReplicationChoice:
    """The creator's hidden choice for ``job_id``: seeded by its own (deterministic) signature of the
    job id, so nobody else can predict it and the creator recomputes it after a restart."""
    seed = sha256(creator.sign(b"deai-replication" + from_hex(job_id, length=32, what="job id")))
    return ReplicationChoice.draw(job_id, p, r, random.Random(seed))


@dataclass
class JobRun:
    """A verified job for ``purpose`` (e.g. ``"aggregate"``), over one or more attempts."""

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
    attempts: list[dict[str, Any]] = field(default_factory=list)  # {job, nonce, r, p}
    status: str = "pending"  # pending | running | accepted | failed
    output: str | None = None  # accepted output digest (hex, no 0x)
    accepted: list[str] = field(default_factory=list)
    faulted: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)  # failed attempts to resolve after the grace
    refusals: list[str] = field(default_factory=list)
    _layout: Layout | None = field(default=None, repr=False, compare=False)

    # -- persistence ---------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "spec": self.spec.to_json(),
            **{k: getattr(self, k) for k in _FIELDS},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobRun:
        return cls(JobSpec.from_json(data["spec"]), **{k: data[k] for k in _FIELDS if k in data})

    # -- views -----------------------------------------------------------------------------------------

    @property
    def current(self) -> dict[str, Any] | None:
        return self.attempts[-1] if self.attempts else None

    @property
    def done(self) -> bool:
        return self.status in ("accepted", "failed")

    def choice(self, creator: Account, attempt: dict[str, Any]) -> ReplicationChoice:
        return replication_choice(creator, attempt["job"], attempt["p"], attempt["r"])

    def active(self, creator: Account, job_id: str) -> list[int]:
        """Indices of the drawn executors of ``job_id`` that must execute (private to the creator)."""
        for att in self.attempts:
            if att["job"] == job_id:
                return self.choice(creator, att).active(att["r"])
        return []

    def fees_paid(self) -> int:
        """What the accepted attempt paid its executors (out of the task's budget for a task job)."""
        return self.fee * len(self.accepted) if self.status == "accepted" else 0

    # -- driving ---------------------------------------------------------------------------------------

    def _layout_of(self, store: BlobStore) -> Layout:
        if self._layout is None:
            kind = get_kind(self.spec.kind)
            self._layout = kind.output_layout(load_inputs(store, self.spec), self.spec.params)
        return self._layout

    def step(self, ledger: Ledger, store: BlobStore, creator: Account, now: int) -> bool:
        """Take the next due action; True if something was done."""
        if self.done:
            return False
        if not self.attempts:
            self._new_attempt(0, self.r, self.p)
        att = self.current
        job = ledger.job(att["job"])
        if job is None:
            return self._register(ledger, store, creator, att)
        self.status = "running"
        if job["status"] != "open":
            return self._adopt(ledger, att, job)
        if job["replicated"] is None:
            if job["commits"] < len(job["executors"]) and now < job["commit_deadline"]:
                return False
            self._reveal_choice(ledger, creator, att)
            return True
        required = required_executors(job)
        revealed = {e: d for e in required if (d := ledger.revealed(att["job"], e)) is not None}
        if len(revealed) < len(required) and now < job["reveal_deadline"]:
            return False
        return self._decide(ledger, store, creator, att, required, revealed)

    def prepare(self, store: BlobStore) -> None:
        """Optional, while the executors work: learn the output layout now (it reads every input),
        so that checking their uploads after the reveals does not wait for it. Touches nothing but
        that cache, so a runner may call it outside its lock. A failure is left for :meth:`_decide`."""
        if self.done or self._layout is not None:
            return
        with contextlib.suppress(DeaiError):
            self._layout_of(store)

    def _reveal_choice(self, ledger: Ledger, creator: Account, att: dict[str, Any]) -> None:
        choice = self.choice(creator, att)
        ledger.send(
            creator,
            RevealReplication(
                job=att["job"], replicated=choice.replicated, primary=choice.primary, salt=choice.salt
            ),
        )

    def _new_attempt(self, nonce: int, r: int, p: float) -> None:
        spec = JobSpec(self.spec.kind, self.spec.inputs, self.spec.params, self.spec.seed, nonce)
        self.attempts.append({"job": spec.job_id, "nonce": nonce, "r": r, "p": p})

    def _spec_of(self, att: dict[str, Any]) -> JobSpec:
        return JobSpec(self.spec.kind, self.spec.inputs, self.spec.params, self.spec.seed, att["nonce"])

    def _register(self, ledger: Ledger, store: BlobStore, creator: Account, att: dict[str, Any]) -> bool:
        eligible = len(ledger.eligible_executors(self.role, self.fee, exclude=creator.address))
        if eligible < 1:
            return False  # wait for compute providers to stake
        att["r"] = min(att["r"], eligible)
        spec = self._spec_of(att)
        store.put(spec.to_bytes())  # executors fetch the spec by the job id
        choice = self.choice(creator, att)
        register = RegisterJob(
            job=att["job"],
            task=self.task,
            job_type=spec.kind,
            inputs=(att["job"],),  # the spec (the job id's preimage) commits to every input
            fee=self.fee,
            executors=att["r"],
            replication=choice.commitment,
            commit_window_ms=self.commit_ms,
            reveal_window_ms=self.reveal_ms,
            role=self.role,
            resolver=creator.address,
            quorum=0,  # a strict majority: the ledger's floor for faulting anyone
            model=self.model,
        )
        try:
            ledger.send(creator, register)
        except (InsufficientEscrow, InsufficientBalance) as exc:  # retrying cannot help
            self.refusals.append(f"register: {type(exc).__name__}: {exc}")
            self.status = "failed"
            return True
        self.status = "running"
        return True

    def _adopt(self, ledger: Ledger, att: dict[str, Any], job: dict[str, Any]) -> bool:
        """The attempt was resolved already (we crashed right after accepting): take the ledger's
        word; the accepted executors' revealed digest is the output."""
        if job["status"] == "accepted" and job["accepted"]:
            self.status, self.accepted, self.faulted = "accepted", list(job["accepted"]), list(job["faulted"])
            self.output = ledger.revealed(att["job"], job["accepted"][0]).removeprefix("0x")
            return True
        return self._escalate()

    def _decide(
        self,
        ledger: Ledger,
        store: BlobStore,
        creator: Account,
        att: dict[str, Any],
        required: list[str],
        revealed: dict[str, str],
    ) -> bool:
        layout = self._layout_of(store)
        rule = get_kind(self.spec.kind).compare_rule(self.spec.params)
        outputs = []
        for e in required:
            out = None
            if e in revealed:
                try:
                    out = check_upload(store, revealed[e], layout)
                except DeaiError as exc:
                    self.refusals.append(f"{e}: {type(exc).__name__}: {exc}")
            outputs.append(out)
        decision = decide(outputs, rule, quorum=len(required))
        if decision.winner is None:
            self.stale.append(att["job"])
            return self._escalate()
        majority = {required[i] for i in decision.majority}
        digests = {revealed[e] for e in majority}
        # an identical reveal is the same output: the ledger refuses to fault it, so accept it too
        accepted = [e for e in required if e in majority or revealed.get(e) in digests]
        receipt = ledger.send(creator, AcceptResult(job=att["job"], accepted=tuple(accepted)))
        resolved = receipt.event("job_resolved").data
        self.status = "accepted"
        self.accepted, self.faulted = list(resolved["accepted"]), list(resolved["faulted"])
        self.output = revealed[required[decision.winner]].removeprefix("0x")
        # The accepted digest is stored by the ledger only for exact-majority resolutions; keep ours.
        return True

    def _escalate(self) -> bool:
        att = self.current
        if len(self.attempts) >= self.max_attempts:
            self.status = "failed"
            return True
        self._new_attempt(att["nonce"] + 1, att["r"] + self.extra, 1.0)
        return True


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
    "attempts",
    "status",
    "output",
    "accepted",
    "faulted",
    "stale",
    "refusals",
)
