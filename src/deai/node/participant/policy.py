"""What an honest participant daemon agrees to: its join policy and its timing discipline.

A daemon never works for free and never accepts a duty it cannot meet in time, because a duty it
accepted and then failed (a commitment it does not reveal) costs it stake.

**Join policy** (:class:`JoinPolicy`; ``deai node`` flags, scenario key ``policy``):

- a data provider joins a task only if the task pays at least ``min_reward`` per provider per round
  -- ``budget // rounds // max_providers``, from the task spec, with the budget the ledger actually
  escrowed if that is less -- and asks for a provider stake of at most ``max_task_stake``;
- a compute provider or host commits to a job only if it pays at least ``min_job_fee`` per executor.

A refused task or job is logged once (one line) and never retried.

**Timing** (:class:`Timing`): a drawn executor is not bound until it commits; once committed, it is
slashed if it does not reveal before the reveal deadline. So it commits only when

- its own estimate of the time from now until its commitment lands (the slowest of the recent
  runs of that job kind, measured on the ledger clock from the poll to the ledger's receipt of the
  commit, times :data:`SAFETY`, plus ``margin_ms``) ends before the commit deadline;
- the reveal window is at least ``min_reveal_ms`` (a reveal is one small transaction, but a busy
  machine needs a moment to send it);
- the work does not push the reveal of a job it already committed to past that job's deadline;

and it reveals as soon as reveals open (the roles send reveals before any new work). Estimates are
on the ledger clock, so a simulation whose clock stands still while daemons work never refuses.
"""

from __future__ import annotations

import logging
from collections import defaultdict, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from deai.ledger.records import JobRecord, TaskRecord

__all__ = ["FLAGS", "SAFETY", "JoinPolicy", "Refusals", "Timing", "policy_args"]

log = logging.getLogger(__name__)

SAFETY = 1.5  # the estimate is the slowest recent run times this
RECENT = 8  # runs of a kind remembered for the estimate


@dataclass(frozen=True)
class JoinPolicy:
    """The least an honest daemon accepts. Defaults are sane for the bundled scenarios (their tasks
    pay 1,000 to 2,500 per provider per round and 10 per job) and refuse unpaid work."""

    min_reward: int = 100  # task budget per provider per round
    max_task_stake: int = 10_000  # the most a task may lock of a provider's funds
    min_job_fee: int = 1  # fee per executor of a job
    min_reveal_ms: int = 2_000  # shortest reveal window (ledger ms) worth committing to
    margin_ms: int = 1_000  # added to the daemon's own time estimate before a commit deadline
    first_estimate_ms: int = 1_000  # the estimate of a job kind never run yet

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**53:
                raise ValueError(f"policy {f.name} must be an integer in [0, 2**53), got {value!r}")

    @classmethod
    def from_options(cls, options: Mapping[str, Any] | None) -> JoinPolicy:
        """The policy in a daemon's options (``options["policy"]``: a mapping of the fields above
        or a :class:`JoinPolicy`); missing fields take their defaults."""
        given = (options or {}).get("policy") or {}
        if isinstance(given, JoinPolicy):
            return given
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(given) - known)
        if unknown:
            raise ValueError(f"unknown policy key(s) {unknown}; known: {sorted(known)}")
        return cls(**{k: int(v) for k, v in given.items()})

    def task_refusal(self, spec: Any, record: TaskRecord | None) -> str | None:
        """Why a data provider does not join the task (``spec``: its TaskSpec, ``record``: the
        ledger's task record), or None to join."""
        if record is None:
            return "the task is not on the ledger"
        budget = min(int(spec.budget), record.budget)
        per = budget // spec.rounds // max(1, spec.max_providers)
        if per < self.min_reward:
            return (
                f"pays {per} per provider per round (budget {budget}, {spec.rounds} rounds,"
                f" {spec.max_providers} providers), below the minimum {self.min_reward}"
            )
        stake = record.provider_stake
        if stake > self.max_task_stake:
            return f"asks a provider stake of {stake}, above the maximum {self.max_task_stake}"
        return None

    def job_refusal(self, job: JobRecord | None) -> str | None:
        """Why an executor does not commit to ``job`` (the ledger's job record) whatever the time,
        or None."""
        if job is None:
            return "the job is not on the ledger"
        if not job.open:
            return f"the job is {job.status.value}"
        if job.fee < self.min_job_fee:
            return f"pays {job.fee} per executor, below the minimum {self.min_job_fee}"
        if job.reveal_deadline - job.commit_deadline < self.min_reveal_ms:
            return (
                f"its reveal window of {job.reveal_deadline - job.commit_deadline} ms is"
                f" shorter than {self.min_reveal_ms} ms"
            )
        return None


#: ``deai node`` flags of the policy fields (the rest keep their defaults on the command line)
FLAGS = {
    "min_reward": "--min-reward",
    "max_task_stake": "--max-task-stake",
    "min_job_fee": "--min-job-fee",
    "min_reveal_ms": "--min-reveal-ms",
}


def policy_args(policy: Mapping[str, int] | None) -> list[str]:
    """The ``deai node`` arguments giving a daemon the policy fields in ``policy``."""
    policy = dict(policy or {})
    unknown = sorted(set(policy) - set(FLAGS))
    if unknown:
        raise ValueError(f"policy key(s) {unknown} have no deai node flag; known: {sorted(FLAGS)}")
    return [arg for k, v in sorted(policy.items()) for arg in (FLAGS[k], str(int(v)))]


class Timing:
    """A daemon's own estimate of how long its commitments take to land, per job kind, and the
    deadline check of the module docstring. Plain in-process state: a restarted daemon starts from
    ``policy.first_estimate_ms`` again."""

    def __init__(self, policy: JoinPolicy) -> None:
        self.policy = policy
        self.runs: dict[str, deque[int]] = defaultdict(lambda: deque(maxlen=RECENT))

    def record(self, kind: str, ms: int) -> None:
        """One run of ``kind``: ``ms`` of the ledger clock from its poll to its commit's receipt."""
        self.runs[kind].append(max(0, int(ms)))

    def estimate(self, kind: str) -> int:
        runs = self.runs.get(kind)
        return round(max(runs) * SAFETY) if runs else self.policy.first_estimate_ms

    def done_by(self, kind: str, now: int) -> int:
        """When a run of ``kind`` started at ledger time ``now`` has its commitment landed, at worst."""
        return now + self.estimate(kind) + self.policy.margin_ms

    def too_late(self, kind: str, now: int, commit_deadline: int) -> str | None:
        """Why a run of ``kind`` started at ``now`` cannot commit to a job whose commits close at
        ``commit_deadline`` in time, or None. Final: the deadline only comes closer."""
        done_by = self.done_by(kind, now)
        if done_by >= commit_deadline:
            return (
                f"its commit deadline is {commit_deadline - now} ms away and this daemon needs"
                f" about {done_by - now} ms"
            )
        return None

    def blocks_reveal(self, kind: str, now: int, reveal_deadlines: Iterable[int]) -> bool:
        """True if a run of ``kind`` started at ``now`` would end after the reveal deadline of a
        job already committed to (``reveal_deadlines``: theirs). Not final: wait for the reveal,
        then reconsider."""
        done_by = self.done_by(kind, now)
        return any(done_by >= deadline for deadline in reveal_deadlines)


class Refusals:
    """Log each refused task or job once, and remember it so it is never retried (bounded: only
    what is still listed is kept, see :meth:`keep`)."""

    def __init__(self, memory: dict[str, str] | None = None, what: str = "job") -> None:
        self.seen: dict[str, str] = memory if memory is not None else {}
        self.what = what

    def __contains__(self, key: str) -> bool:
        return key in self.seen

    def add(self, key: str, reason: str) -> None:
        if key not in self.seen:
            log.warning("refused %s %s: %s", self.what, key, reason)
            self.seen[key] = reason

    def keep(self, live: Iterable[str]) -> None:
        live = set(live)
        for key in [k for k in self.seen if k not in live]:
            del self.seen[key]
