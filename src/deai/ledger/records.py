"""Typed records of the ledger's object-valued state rows: tasks, members, unbonding, payouts,
jobs and models.

The state stores plain JSON objects (their canonical encoding is what state roots, log hashes and
signed checkpoints commit to); a record is the typed view of one such row. ``Record.from_json``
is strict: the value must be an object with exactly the record's keys, each of its type (ints
are never bools, lists hold strings), else :class:`~deai.ledger.errors.MalformedRecord` names the
record and the fault -- a corrupt database or a hub's malformed answer is refused by name, never
crashes a daemon with a KeyError. ``record.to_json()`` gives back exactly the stored object, so
``R.from_json(v).to_json() == v`` for every valid row ``v``.

Records are frozen: the rules make a changed copy (``dataclasses.replace``) and put it back with
the state's typed writers (:meth:`~deai.ledger.state.State.put_job` and the like). In process the
ledger's queries (``ledger.job(id)``, ``ledger.task(id)``, ...) return records; over the network
the hub sends ``to_json()`` and the client parses it back with ``from_json``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar, Self

from deai.ledger.errors import MalformedRecord

__all__ = [
    "JobRecord",
    "JobStatus",
    "MemberRecord",
    "ModelRecord",
    "PayoutRecord",
    "Record",
    "TaskRecord",
    "TaskStatus",
    "UnbondingRecord",
]


class TaskStatus(StrEnum):
    """A task on the ledger: open (members join, jobs run) or closed (budget refunded)."""

    OPEN = "open"
    CLOSED = "closed"


class JobStatus(StrEnum):
    """A job on the ledger: ``open`` until resolved, then how it was resolved (see rules/jobs.py)."""

    OPEN = "open"
    ACCEPTED = "accepted"
    NO_MAJORITY = "no_majority"
    FAILED = "failed"
    ABANDONED = "abandoned"


def _fault(cls: type, what: str) -> MalformedRecord:
    return MalformedRecord(f"a {cls.__name__}: {what}")


def _parse(cls: type, name: str, hint: Any, value: Any) -> Any:
    """``value`` as the field's type ``hint`` (int, str, bool, a StrEnum, tuple[str, ...], an
    optional of one of these, or Any), or MalformedRecord naming the field."""
    if hint is Any:
        return value
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        (inner,) = [t for t in options if t is not type(None)]
        return _parse(cls, name, inner, value)
    if origin is tuple:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise _fault(cls, f"{name} is not a list of strings")
        return tuple(value)
    if isinstance(hint, type) and issubclass(hint, StrEnum):
        try:
            return hint(value)
        except ValueError:
            raise _fault(cls, f"{name} {str(value)[:40]!r} is not one of {[m.value for m in hint]}") from None
    if not (isinstance(value, hint) and (hint is not int or not isinstance(value, bool))):
        raise _fault(cls, f"{name} is a {type(value).__name__}, not a {hint.__name__}")
    return value


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    """A record's field types, resolved once per class."""
    if cls not in _HINTS:
        hints = typing.get_type_hints(cls)
        _HINTS[cls] = {f.name: hints[f.name] for f in dataclasses.fields(cls)}
    return _HINTS[cls]


def _plain(value: Any) -> Any:
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, tuple):
        return list(value)
    return value


class Record:
    """The base of the ledger's records: strict ``from_json`` and exact ``to_json``."""

    TABLE: ClassVar[str]

    @classmethod
    def from_json(cls, value: Any) -> Self:
        """The record of a stored (or served) JSON object; MalformedRecord unless it has exactly
        the record's keys, each of its type."""
        if not isinstance(value, dict):
            raise _fault(cls, f"expected an object, got a {type(value).__name__}")
        hints = _hints(cls)
        if value.keys() != hints.keys():
            missing, unknown = sorted(hints.keys() - value.keys()), sorted(value.keys() - hints.keys())
            raise _fault(cls, f"missing keys {missing}, unknown keys {[str(k)[:40] for k in unknown][:8]}")
        return cls(**{name: _parse(cls, name, hint, value[name]) for name, hint in hints.items()})

    def to_json(self) -> dict[str, Any]:
        """The JSON object the ledger stores (enums as their strings, tuples as lists)."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]


@dataclass(frozen=True)
class TaskRecord(Record):
    """A task: its ``creator`` (refunded at close), ``coordinator`` (posts checkpoints, payouts,
    jobs), escrowed ``budget`` left, ``params`` (hash of the task's spec blob), the
    ``provider_stake`` each member locks, the last checkpointed ``round``, the ``members`` count
    and ``status``."""

    TABLE: ClassVar[str] = "tasks"
    creator: str
    coordinator: str
    budget: int
    params: str
    provider_stake: int
    round: int
    members: int
    status: TaskStatus

    @property
    def open(self) -> bool:
        return self.status == TaskStatus.OPEN


@dataclass(frozen=True)
class MemberRecord(Record):
    """A task member: the ``role`` it joined as and the task ``stake`` it locked."""

    TABLE: ClassVar[str] = "members"
    role: str
    stake: int


@dataclass(frozen=True)
class UnbondingRecord(Record):
    """Stake on its way out: ``amount`` withdrawable from ledger time ``release`` (ms)."""

    TABLE: ClassVar[str] = "unbonding"
    amount: int
    release: int


@dataclass(frozen=True)
class PayoutRecord(Record):
    """One payout epoch of a task: Merkle ``root`` of (address, amount) leaves, ``total`` moved out
    of the budget, ``claimed`` so far, and the verified ``job`` whose result is the root (or None)."""

    TABLE: ClassVar[str] = "payouts"
    root: str
    total: int
    claimed: int
    job: str | None


@dataclass(frozen=True)
class JobRecord(Record):
    """A verified job (see :mod:`deai.ledger.rules.jobs` for its life). Registration fixes
    ``creator``, ``task`` (None outside a task), ``job_type``, ``inputs``, the ``fee`` per
    executor, the ``escrow`` still held, the executors' ``role``, the drawn ``executors``, the draw
    ``seed``, the creator's ``replication`` commitment, both deadlines, the ``resolver`` (None:
    exact majority), the ``quorum`` (0: strict majority) and the served ``model``. Then come the
    ``commits`` and ``reveals`` counts, the revealed choice (``replicated``, ``primary``; None
    until revealed), the ``status``, the accepted ``digest`` (None unless resolved by majority)
    and who was ``accepted``, ``faulted`` and ``missed``."""

    TABLE: ClassVar[str] = "jobs"
    creator: str
    task: str | None
    job_type: str
    inputs: tuple[str, ...]
    fee: int
    escrow: int
    role: str
    executors: tuple[str, ...]
    seed: str
    replication: str
    commit_deadline: int
    reveal_deadline: int
    resolver: str | None
    quorum: int
    model: str | None
    commits: int
    reveals: int
    replicated: bool | None
    primary: int | None
    status: JobStatus
    digest: str | None
    accepted: tuple[str, ...]
    faulted: tuple[str, ...]
    missed: tuple[str, ...]

    @property
    def open(self) -> bool:
        return self.status == JobStatus.OPEN


@dataclass(frozen=True)
class ModelRecord(Record):
    """A registered model: its ``owner`` (registrant), ``task`` (None if registered directly),
    ``provenance`` (Merkle root of contributors' shares), provenance ``document`` hash,
    ``total_shares``, the hosts' part of each fee ``host_bps``, and the royalty pool's per-share
    ``index``, rounding ``carry`` and unclaimed ``pool``."""

    TABLE: ClassVar[str] = "models"
    owner: str
    task: str | None
    provenance: str
    document: str
    total_shares: int
    host_bps: int
    index: int
    carry: int
    pool: int
