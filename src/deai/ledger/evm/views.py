"""Reading the contracts' views at one block, with a cache for that block.

A contract's state after block ``B`` is fixed once ``B`` is mined, so a view read at ``B`` always
gives the same answer: :class:`BlockView` reads every view at its block (``eth_call`` with that
block number, never "latest", so what is read together comes from one state) and keeps the answers.
:class:`Views` hands out the block view of the newest block it has been asked about; a newer block
starts an empty one, an older block gets an uncached one. A block view caches at most
``MAX_CACHED`` answers (then stops adding), so queries for many keys cannot grow it without bound.
The block number stands for the block: like the log follower, this assumes no reorganisation
below the blocks read (a development chain, anvil, or a chain read at final blocks).

The record decoders (``task``, ``member``, ``payout``, ``model``, ``job``) turn the contracts'
tuples into :mod:`deai.ledger.records` values, the same for queries and for ``verify``.
"""

from __future__ import annotations

from typing import Any

from deai.ledger.config import ROLES
from deai.ledger.records import (
    JobRecord,
    JobStatus,
    MemberRecord,
    ModelRecord,
    PayoutRecord,
    TaskRecord,
    TaskStatus,
    UnbondingRecord,
)

__all__ = ["JOB_STATUS", "MAX_CACHED", "BlockView", "Views", "b32", "hex_"]

MAX_CACHED = 4096
JOB_STATUS = (
    None,
    JobStatus.OPEN,
    JobStatus.ACCEPTED,
    JobStatus.NO_MAJORITY,
    JobStatus.FAILED,
    JobStatus.ABANDONED,
)


def b32(hex_value: str) -> bytes:
    return bytes.fromhex(hex_value[2:])


def hex_(value: bytes) -> str:
    return "0x" + bytes(value).hex()


def _opt(value: bytes) -> str | None:
    return None if value == bytes(32) else hex_(value)


class BlockView:
    """The contracts' views at block ``block`` (``cached``: keep the answers). ``call``: the
    fields of each ``eth_call`` (e.g. ``{"from": ...}``: an in-process chain asks for its
    accounts on every call without one)."""

    def __init__(
        self, ledger: Any, jobs: Any, block: int, cached: bool = True, call: dict[str, Any] | None = None
    ) -> None:
        self.ledger, self.jobs, self.block = ledger, jobs, block
        self._call: Any = call or {}
        self._cache: dict[tuple[Any, ...], Any] | None = {} if cached else None

    def _read(self, contract: Any, name: str, *args: Any) -> Any:
        cache = self._cache
        key = (contract.address, name, *args)
        if cache is not None and key in cache:
            return cache[key]
        value = getattr(contract.functions, name)(*args).call(self._call, block_identifier=self.block)
        if cache is not None and len(cache) < MAX_CACHED:
            cache[key] = value
        return value

    def timestamp(self) -> int:
        """The block's timestamp."""
        key = ("timestamp",)
        if self._cache is not None and key in self._cache:
            return self._cache[key]
        value = int(self.ledger.w3.eth.get_block(self.block)["timestamp"])
        if self._cache is not None:
            self._cache[key] = value
        return value

    def view(self, name: str, *args: Any) -> Any:
        """A view of the Ledger contract."""
        return self._read(self.ledger, name, *args)

    def jobs_view(self, name: str, *args: Any) -> Any:
        """A view of the Jobs contract."""
        return self._read(self.jobs, name, *args)

    # -- records ------------------------------------------------------------------------------------------

    def unbonding(self, address: str, role: str) -> UnbondingRecord | None:
        amount = self.view("unbonding_amount", address, ROLES.index(role))
        if not amount:
            return None
        return UnbondingRecord(
            amount=amount, release=self.view("unbonding_release", address, ROLES.index(role))
        )

    def task(self, task_id: str) -> TaskRecord | None:
        creator, coordinator, budget, params, stake, round_, members, status = self.view(
            "tasks", b32(task_id)
        )
        if status == 0:
            return None
        return TaskRecord(
            creator=creator,
            coordinator=coordinator,
            budget=budget,
            params=hex_(params),
            provider_stake=stake,
            round=round_,
            members=members,
            status=TaskStatus.OPEN if status == 1 else TaskStatus.CLOSED,
        )

    def member(self, task_id: str, address: str) -> MemberRecord | None:
        role, stake, joined = self.view("members", b32(task_id), address)
        return MemberRecord(role=ROLES[role], stake=stake) if joined else None

    def checkpoint(self, task_id: str, round: int) -> str | None:
        return _opt(bytes(self.view("checkpoints", b32(task_id), round)))

    def payout(self, task_id: str, epoch: int) -> PayoutRecord | None:
        root, total, claimed, job, posted = self.view("payouts", b32(task_id), epoch)
        if not posted:
            return None
        return PayoutRecord(root=hex_(root), total=total, claimed=claimed, job=_opt(job))

    def model(self, model_id: str) -> ModelRecord | None:
        owner, task, provenance, document, total, host_bps, index, carry, pool, registered = self.view(
            "models", b32(model_id)
        )
        if not registered:
            return None
        return ModelRecord(
            owner=owner,
            task=_opt(task),
            provenance=hex_(provenance),
            document=hex_(document),
            total_shares=total,
            host_bps=host_bps,
            index=index,
            carry=carry,
            pool=pool,
        )

    def duty(self, job_id: str, executor: str) -> tuple[str | None, str | None]:
        """(commitment, revealed digest) of ``executor`` in the job, None where not yet sent."""
        _, drawn, duties = self.jobs_view("job_view", b32(job_id))
        if executor in drawn:
            commitment, digest, committed, revealed = duties[drawn.index(executor)]
        else:  # not drawn (or spelled otherwise): the contract's own row
            commitment, digest, committed, revealed = self.jobs_view("duties", b32(job_id), executor)
        return (hex_(commitment) if committed else None, hex_(digest) if revealed else None)

    def job(self, job_id: str, replayed: JobRecord | None) -> JobRecord | None:
        """The Jobs contract's record (one view: the job, its executors, their duties), with the fields
        only the job's transactions carry (``job_type``, ``inputs``, ``accepted``, ``faulted``,
        ``missed``) from ``replayed``: the record replayed from the log up to this block."""
        (
            creator, task, fee, escrow, role, seed, replication, commit_deadline, reveal_deadline,
            resolver, quorum, model, commits, reveals, replicated, primary, status, digest,
        ), drawn, _ = self.jobs_view("job_view", b32(job_id))  # fmt: skip
        if status == 0 or replayed is None:
            return None
        return JobRecord(
            creator=creator,
            task=_opt(task),
            job_type=replayed.job_type,
            inputs=replayed.inputs,
            fee=fee,
            escrow=escrow,
            role=ROLES[role],
            executors=tuple(drawn),
            seed=hex_(seed),
            replication=hex_(replication),
            commit_deadline=commit_deadline,
            reveal_deadline=reveal_deadline,
            resolver=None if int(resolver, 16) == 0 else resolver,
            quorum=quorum,
            model=_opt(model),
            commits=commits,
            reveals=reveals,
            replicated=None if replicated == 0 else replicated == 2,
            primary=None if replicated == 0 else primary,
            status=JOB_STATUS[status] or JobStatus.OPEN,
            digest=_opt(digest),
            accepted=replayed.accepted,
            faulted=replayed.faulted,
            missed=replayed.missed,
        )


class Views:
    """Hands out :class:`BlockView` objects, keeping the newest block's (thread-safe: a reader
    keeps the block view it was given; a newer block replaces it for later readers)."""

    def __init__(self, ledger: Any, jobs: Any, call: dict[str, Any] | None = None) -> None:
        self.ledger, self.jobs, self.call = ledger, jobs, call
        self._current = BlockView(ledger, jobs, -1)

    def at(self, block: int, cached: bool = True) -> BlockView:
        """The block view of ``block``: the shared one (cached), or a new one of its own."""
        current = self._current
        if cached and block == current.block:
            return current
        if not cached or block < current.block:  # an audit, or a reader behind another
            return BlockView(self.ledger, self.jobs, block, call=self.call)
        fresh = BlockView(self.ledger, self.jobs, block, call=self.call)
        self._current = fresh
        return fresh
