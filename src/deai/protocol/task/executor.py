"""Compute providers on a network: turn job assignments into commit and reveal transactions.

An :class:`ExecutorAgent` wraps a :class:`deai.protocol.jobs.executor.Executor` (honest, or a named
cheater from :mod:`deai.protocol.jobs.cheaters`) working on a local blob store. The node feeds it
the assignments it polls from the coordinator (job id, drawn executors, deadlines, its private
activation flag, how many committed) and a ``fetch`` callable that brings a blob into the local
store (verified by hash). :meth:`ExecutorAgent.on_assignment` returns what to do now: output blobs
to upload first (from the local store) and then ledger transactions to sign and submit.

What it has committed to (digest and salt) is kept in :attr:`ExecutorAgent.memory`, plain JSON
that the node saves to disk, so a restarted compute provider still reveals.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from deai.core.accounts import Account
from deai.core.blobs import BlobStore
from deai.ledger.tx import Tx
from deai.ledger.txs import Commit, Reveal
from deai.protocol.jobs.cheaters import make_executor
from deai.protocol.jobs.commit_reveal import Opening
from deai.protocol.jobs.executor import JobView
from deai.protocol.jobs.kinds.base import get_kind
from deai.protocol.jobs.spec import JobSpec

__all__ = ["Action", "ExecutorAgent"]


@dataclass
class Action:
    uploads: list[str] = field(default_factory=list)  # local blob digests to push first
    txs: list[Tx] = field(default_factory=list)


class ExecutorAgent:
    def __init__(
        self, account: Account, store: BlobStore, behaviour: str = "honest", memory: dict | None = None
    ) -> None:
        self.account, self.store, self.behaviour = account, store, behaviour
        self.executor = make_executor(behaviour, account, store, threads=1)
        self.memory: dict[str, Any] = memory if memory is not None else {"committed": {}, "revealed": []}
        for job, o in self.memory["committed"].items():
            if o is not None and job not in self.memory["revealed"]:
                self.executor.openings[job] = Opening(job, account.address, o["digest"], o["salt"])
        self._pending: dict[str, tuple[int, Tx]] = {}  # messages a cheater sends later

    @property
    def address(self) -> str:
        return self.account.address

    def _view(
        self, a: dict[str, Any], spec: JobSpec, now: int, reveals: dict, work: JobSpec | None = None
    ) -> JobView:
        return JobView(
            spec,
            tuple(a["executors"]),
            a["commit_deadline"],
            a["reveal_deadline"],
            now,
            bool(a["active"]),
            dict(a.get("commitments", {})),
            reveals,
            work,
        )

    def on_assignment(
        self,
        a: dict[str, Any],
        now: int,
        fetch: Callable[[str], None],
        fetch_many: Callable[[list[str]], None] | None = None,
    ) -> Action:
        """The actions due at ``now`` for assignment ``a`` (see the module docstring).
        ``fetch_many`` (optional) brings several blobs at once (the job's inputs)."""
        job = a["job"]
        act = Action()
        if job in self._pending and now >= self._pending[job][0]:
            act.txs.append(self._pending.pop(job)[1])
        mem = self.memory
        if job in mem["revealed"]:
            return act
        fetch(job.removeprefix("0x"))
        spec = JobSpec.from_bytes(self.store.get(job.removeprefix("0x")), job_id=job)
        if job not in mem["committed"]:
            if now >= a["commit_deadline"]:
                return act
            work = None
            if a.get("verifier"):  # a verifier of the producer's output: wait for it, then check it
                answer = a.get("answer")
                if not isinstance(answer, str) or len(answer.removeprefix("0x")) != 64:
                    return act
                work = get_kind(spec.kind).verifier_work(spec, answer)
            inputs = list((work or spec).inputs)
            if a["active"] and fetch_many is not None:
                fetch_many(inputs)
            elif a["active"]:
                for digest in inputs:
                    fetch(digest)
            msg = self.executor.commit(self._view(a, spec, now, {}, work))
            if msg is None:
                return act
            opening = self.executor.openings.get(job)
            mem["committed"][job] = (
                None if opening is None else {"digest": opening.digest, "salt": opening.salt}
            )
            if opening is not None:
                act.uploads.append(opening.digest.removeprefix("0x"))
            self._later(act, job, msg.at, now, Commit(job=job, commitment=msg.commitment))
            return act
        reveals_open = a["commits"] >= len(a["executors"]) or now >= a["commit_deadline"]
        if not reveals_open or now >= a["reveal_deadline"]:
            return act
        reveal = self.executor.reveal(self._view(a, spec, now, dict(a.get("reveals", {}))))
        if reveal is None:
            return act
        mem["revealed"].append(job)
        self._later(act, job, reveal.at, now, Reveal(job=job, digest=reveal.digest, salt=reveal.salt))
        return act

    def _later(self, act: Action, job: str, at: int, now: int, tx: Tx) -> None:
        if at <= now:
            act.txs.append(tx)
        else:
            self._pending[job] = (at, tx)

    def forget(self, live_jobs: set[str]) -> None:
        """Drop the memory of jobs no longer assigned (resolved)."""
        mem = self.memory
        mem["committed"] = {j: o for j, o in mem["committed"].items() if j in live_jobs}
        mem["revealed"] = [j for j in mem["revealed"] if j in live_jobs]
