"""Typed records of a federated task as the coordinator keeps and serves it.

- :class:`RoundRecord`: one finished round in the coordinator's history (its checkpoint, who
  contributed, the verified jobs, scores, payout and validation metrics);
- :class:`TaskView`: the task's status (``task.status`` on the hub, ``TaskCoordinator.status()``);
- :class:`RoundView`: what a provider needs for the current round (``task.round``);
- :class:`TaskState`: the coordinator's own state, saved after every step (its JSON is
  ``dataclasses.asdict``; the hub keeps it in its KV store).

Each has ``to_json()`` -- exactly the JSON the hub sends and the coordinator saves -- and
``from_json(data)``, which the client side calls once at the edge: it refuses an answer whose keys
are not the record's (missing or unknown) with :class:`MalformedView`, so daemons and reports read
attributes, never keys of a foreign dict.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Self

from deai.protocol.task.errors import TaskError

__all__ = ["JobSummary", "MalformedView", "Phase", "RoundRecord", "RoundView", "TaskState", "TaskView"]


class Phase(StrEnum):
    """Where a task is (see :mod:`deai.protocol.task.coordinator`); a ``str``, so saved state stays
    plain JSON. ``rejected`` is the hub's answer for a task it refused to adopt."""

    JOIN = "join"
    TRAIN = "train"
    JOBS = "jobs"
    FINISH = "finish"
    DONE = "done"
    FAILED = "failed"
    REJECTED = "rejected"


class MalformedView(TaskError):
    """A task record (a hub's answer, or saved coordinator state) lacks a key or has an unknown one."""


def _fields(cls: type, data: Any) -> dict[str, Any]:
    """``data``'s values for the dataclass ``cls``: every key a field, every field without a
    default present; else MalformedView naming what is wrong."""
    if not isinstance(data, Mapping):
        raise MalformedView(f"a {cls.__name__} is an object, got a {type(data).__name__}")
    names = {f.name: f for f in dataclasses.fields(cls)}
    required = {
        n
        for n, f in names.items()
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    unknown, missing = sorted(set(data) - set(names)), sorted(required - set(data))
    if unknown or missing:
        raise MalformedView(
            f"a {cls.__name__}: missing keys {missing}, unknown keys {[str(k)[:40] for k in unknown][:8]}"
        )
    return dict(data)


@dataclass(frozen=True)
class RoundRecord:
    """One finished round: ``checkpoint`` (digest of the new global model, hex without 0x), the
    ``contributors`` whose updates were aggregated, each one's ``updates`` digest and ``scores``,
    the accepted ``aggregate_job`` and ``score_job`` and their accepted ``executors`` per purpose,
    the digest of the data the round was ``scored_on`` (its hidden scoring set, or the public
    validation data when the task has none or its creator withheld it), the ``defense`` the
    aggregation ran (in words: :func:`deai.protocol.task.jobspecs.defense`),
    the ``faulted`` executors, the ``payout`` posted and its ``allocation``, the validation
    metrics (``val_perplexity`` is None unless the task models text), the privacy ``epsilon`` so
    far (None without DP) and the ledger ``time`` the round finished. A delegated-training round
    (:mod:`deai.protocol.task.delegated_round`) has its training job as ``aggregate_job``, no
    contributors, and the job's ``disputes``
    (:class:`~deai.protocol.jobs.delegated.DisputeRecord` as JSON)."""

    round: int
    checkpoint: str
    contributors: list[str]
    updates: dict[str, str]
    scores: dict[str, float]
    aggregate_job: str
    score_job: str
    executors: dict[str, list[str]]
    faulted: list[str]
    payout: int
    allocation: dict[str, Any]
    val_accuracy: float
    val_loss: float
    val_perplexity: float | None = None
    epsilon: float | None = None
    time: int = 0
    scored_on: str = ""
    defense: str = ""
    disputes: list[dict[str, Any]] = field(default_factory=list)  # a delegated round's refereed disputes

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        if not out["disputes"]:  # a round without disputes reads as before the field existed
            del out["disputes"]
        return out

    @classmethod
    def from_json(cls, data: Any) -> Self:
        return cls(**_fields(cls, data))


@dataclass(frozen=True)
class JobSummary:
    """A verified job run of the current round: its ``status`` (pending, running, accepted,
    failed) and how many ``attempts`` it took so far."""

    status: str
    attempts: int

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "attempts": self.attempts}

    @classmethod
    def from_json(cls, data: Any) -> Self:
        return cls(**_fields(cls, data))


@dataclass(frozen=True)
class TaskView:
    """A task's status: ``phase`` and ``round`` (of ``rounds``), ``members`` joined, updates
    ``delivered`` of the ``roster`` this round, the phase ``deadline``, the current global
    ``checkpoint``, the ``history`` of finished rounds, the current round's ``jobs``, the privacy
    ``epsilon``, the registered ``model`` once done, why it failed (``reason``), the ``stale``
    attempts left to resolve, the ``scores`` (a :class:`~deai.protocol.incentives.ScoreBook`'s
    JSON, or None) and every verified job's id (``job_ids``). A task the hub ``rejected`` has only
    ``task``, ``phase`` and ``reason``."""

    task: str
    phase: Phase
    reason: str | None = None
    round: int = 0
    rounds: int = 0
    members: int = 0
    delivered: int = 0
    roster: int = 0
    deadline: int = 0
    checkpoint: str = ""
    history: list[RoundRecord] = field(default_factory=list)
    jobs: dict[str, JobSummary] = field(default_factory=dict)
    epsilon: float | None = None
    model: str | None = None
    stale: int = 0
    scores: dict[str, Any] | None = None
    job_ids: list[str] = field(default_factory=list)

    @classmethod
    def rejected(cls, task: str, reason: str) -> Self:
        return cls(task, Phase.REJECTED, reason)

    def to_json(self) -> dict[str, Any]:
        if self.phase == Phase.REJECTED:
            return {"task": self.task, "phase": self.phase.value, "reason": self.reason}
        return {
            "task": self.task,
            "phase": self.phase.value,
            "round": self.round,
            "rounds": self.rounds,
            "members": self.members,
            "delivered": self.delivered,
            "roster": self.roster,
            "deadline": self.deadline,
            "checkpoint": self.checkpoint,
            "history": [r.to_json() for r in self.history],
            "jobs": {k: j.to_json() for k, j in self.jobs.items()},
            "epsilon": self.epsilon,
            "model": self.model,
            "reason": self.reason,
            "stale": self.stale,
            "scores": self.scores,
            "job_ids": list(self.job_ids),
        }

    @classmethod
    def from_json(cls, data: Any) -> Self:
        values = _fields(cls, data)
        try:
            values["phase"] = Phase(values["phase"])
            values["history"] = [RoundRecord.from_json(r) for r in values.get("history", [])]
            values["jobs"] = {k: JobSummary.from_json(j) for k, j in values.get("jobs", {}).items()}
        except (ValueError, TypeError, AttributeError) as exc:
            raise MalformedView(f"a TaskView: {exc}") from None
        return cls(**values)


@dataclass(frozen=True)
class RoundView:
    """What a provider needs for the current round: ``phase``, ``round`` of ``rounds``, the round's
    starting ``checkpoint``, the upload ``deadline``, the ``roster`` of providers due this round,
    who ``submitted`` already, the task's ``members`` and, with secure aggregation during
    training, the ``secagg`` session (buckets, dimension, clip, tag, phase, deadline); with a
    compressed broadcast, the ``patch`` that rebuilds ``checkpoint`` from the previous one
    (``{"base": digest, "update": digest}``, :mod:`deai.protocol.task.broadcast`)."""

    task: str
    phase: Phase
    round: int
    rounds: int
    checkpoint: str
    deadline: int
    roster: list[str]
    submitted: list[str]
    members: list[str]
    secagg: dict[str, Any] | None = None
    patch: dict[str, str] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "task": self.task,
            "phase": self.phase.value,
            "round": self.round,
            "rounds": self.rounds,
            "checkpoint": self.checkpoint,
            "deadline": self.deadline,
            "roster": list(self.roster),
            "submitted": list(self.submitted),
            "members": list(self.members),
        }
        if self.secagg is not None:
            out["secagg"] = self.secagg
        if self.patch is not None:
            out["patch"] = dict(self.patch)
        return out

    @classmethod
    def from_json(cls, data: Any) -> Self:
        values = _fields(cls, data)
        try:
            values["phase"] = Phase(values["phase"])
        except ValueError as exc:
            raise MalformedView(f"a RoundView: {exc}") from None
        return cls(**values)


@dataclass
class TaskState:
    """What the coordinator of one task knows (see :mod:`deai.protocol.task.coordinator`)."""

    task: str
    phase: Phase = Phase.JOIN
    join_deadline: int = 0
    members: list[str] = field(default_factory=list)
    round: int = 0
    roster: list[str] = field(default_factory=list)
    deadline: int = 0
    checkpoint: str = ""  # the current global checkpoint digest
    strategy_state: str | None = None
    updates: dict[str, dict] = field(default_factory=dict)  # provider -> signed statement
    secagg_attempt: int = 0
    jobs: dict[str, dict] = field(default_factory=dict)  # purpose -> JobRun
    rounds: list[RoundRecord] = field(default_factory=list)
    payouts: dict[str, dict[str, int]] = field(default_factory=dict)  # epoch -> allocation
    earned: dict[str, int] = field(default_factory=dict)
    scorebook: dict = field(default_factory=dict)  # deai.protocol.incentives.ScoreBook
    dp_steps: list[list[float]] = field(default_factory=list)  # [noise multiplier, sample rate]
    epsilon: float | None = None
    stale: list[str] = field(default_factory=list)  # failed job attempts to resolve after the grace
    model: str | None = None
    reason: str | None = None
    previous_checkpoint: str | None = None  # the checkpoint the current one was built from
    global_update: str | None = None  # the compressed global update that built it (broadcast)
    global_residual: str | None = None  # what the broadcast compression has not sent yet
    aggregate_output: str | None = None  # the last accepted aggregate (the previous global update)
    score_output: str | None = None  # the last accepted scores (their sketches: the replay history)
