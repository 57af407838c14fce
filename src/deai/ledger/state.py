"""Ledger state: named tables of canonical-encodable values, with an undo journal.

The state is a dict of tables; each table maps a string key to a plain JSON value (an int or an
object). Composite keys join their parts with ``|`` (``"0xAbc...|compute_provider"``). Values are
treated as immutable: rules never mutate a stored value in place, they :meth:`State.put` a new one.
Every put is journaled, so :meth:`State.rollback` restores the state exactly as it was at a
:meth:`State.mark` -- this is how a refused transaction leaves the state byte-identical without
copying it -- and the journal also tells a backend which rows a batch touched.

Object-valued rows are read and written as typed records (:mod:`deai.ledger.records`):
``state.job(id) -> JobRecord | None``, ``state.put_job(id, record)`` and the like store exactly
``record.to_json()``; a stored row that is not a valid record raises ``MalformedRecord`` naming
the table and key.

Integer tables drop a key when its value reaches 0, so equal states have equal encodings whatever
path led to them. The state root is ``sha256(canonical({"config": ..., "tables": ...}))``, computed
on demand (it is O(state); the log's entry hashes carry the per-transaction commitment).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypeVar

from deai.core.encoding import canonical, sha256, to_hex
from deai.ledger.config import NetworkConfig
from deai.ledger.errors import InvariantViolation, MalformedRecord
from deai.ledger.records import (
    JobRecord,
    MemberRecord,
    ModelRecord,
    PayoutRecord,
    Record,
    TaskRecord,
    UnbondingRecord,
)

__all__ = ["INT_TABLES", "TABLES", "State", "key"]

# table -> what a value is (documentation and the order of supply_breakdown)
TABLES: dict[str, str] = {
    "meta": "height, time, minted, burned (ints)",
    "balances": "address -> free balance",
    "nonces": "address -> next nonce",
    "stakes": "address|role -> staked amount",
    "unbonding": "address|role -> {amount, release}",
    "locks": "address|role -> number of unresolved jobs the stake backs",
    "memberships": "address|role -> number of tasks the account joined as role and has not left",
    "reputation": "address|role -> integer score",
    "tasks": "task -> {creator, coordinator, budget, params, provider_stake, round, members, status}",
    "members": "task|address -> {role, stake}",
    "checkpoints": "task|round -> checkpoint hash",
    "payouts": "task|epoch -> {root, total, claimed, job}",
    "claims": "task|epoch|address -> amount claimed",
    "jobs": "job -> the job record (see rules/jobs.py)",
    "commits": "job|address -> commitment",
    "reveals": "job|address -> revealed digest",
    "models": "model -> {owner, task, provenance, document, total_shares, host_bps, index, carry, pool}",
    "royalty_index": "model|address -> royalty index at the contributor's last claim",
}
INT_TABLES = frozenset(
    {"balances", "nonces", "stakes", "locks", "memberships", "reputation", "checkpoints", "claims"}
)
_MISSING = object()
R = TypeVar("R", bound=Record)


def key(*parts: Any) -> str:
    """A composite table key."""
    return "|".join(str(p) for p in parts)


class State:
    """The ledger state. Create with ``State(config)`` (genesis) or :meth:`from_rows`."""

    __slots__ = ("_journal", "config", "tables")

    def __init__(self, config: NetworkConfig, tables: dict[str, dict[str, Any]] | None = None) -> None:
        self.config = config
        self.tables: dict[str, dict[str, Any]] = {name: {} for name in TABLES}
        if tables:
            for name, rows in tables.items():
                if name not in TABLES:
                    raise InvariantViolation(f"unknown state table {name!r}")
                self.tables[name] = dict(rows)
        meta = self.tables["meta"]
        for name in ("height", "time", "minted", "burned"):
            meta.setdefault(name, 0)
        self._journal: list[tuple[str, str, Any]] = []

    # -- reading ------------------------------------------------------------------------------------

    def get(self, table: str, k: str, default: Any = None) -> Any:
        return self.tables[table].get(k, default)

    def num(self, table: str, k: str) -> int:
        """An integer entry (0 when absent)."""
        return self.tables[table].get(k, 0)

    def meta(self, name: str) -> int:
        return self.tables["meta"][name]

    def items(self, table: str) -> Iterator[tuple[str, Any]]:
        return iter(self.tables[table].items())

    def record(self, cls: type[R], k: str) -> R | None:
        """The row ``k`` of ``cls``'s table as a ``cls`` record (None when absent)."""
        value = self.tables[cls.TABLE].get(k)
        if value is None:
            return None
        try:
            return cls.from_json(value)
        except MalformedRecord as exc:
            raise MalformedRecord(f"{cls.TABLE}[{k}]: {exc}") from None

    def records(self, cls: type[R]) -> Iterator[tuple[str, R]]:
        """Every row of ``cls``'s table as (key, record)."""
        for k in self.tables[cls.TABLE]:
            record = self.record(cls, k)
            assert record is not None
            yield k, record

    def task(self, task_id: str) -> TaskRecord | None:
        return self.record(TaskRecord, task_id)

    def member(self, task_id: str, address: str) -> MemberRecord | None:
        return self.record(MemberRecord, key(task_id, address))

    def unbonding(self, address: str, role: str) -> UnbondingRecord | None:
        return self.record(UnbondingRecord, key(address, role))

    def payout(self, task_id: str, epoch: int) -> PayoutRecord | None:
        return self.record(PayoutRecord, key(task_id, epoch))

    def job(self, job_id: str) -> JobRecord | None:
        return self.record(JobRecord, job_id)

    def model(self, model_id: str) -> ModelRecord | None:
        return self.record(ModelRecord, model_id)

    # -- writing (journaled) ------------------------------------------------------------------------

    def put(self, table: str, k: str, value: Any) -> None:
        rows = self.tables[table]
        self._journal.append((table, k, rows.get(k, _MISSING)))
        if value is None or (value == 0 and table in INT_TABLES):
            rows.pop(k, None)
        else:
            rows[k] = value

    def put_record(self, k: str, record: Record | None, cls: type[Record]) -> None:
        """Store ``record.to_json()`` at ``k`` of ``cls``'s table (None: delete the row)."""
        self.put(cls.TABLE, k, None if record is None else record.to_json())

    def put_task(self, task_id: str, record: TaskRecord) -> None:
        self.put_record(task_id, record, TaskRecord)

    def put_member(self, task_id: str, address: str, record: MemberRecord | None) -> None:
        self.put_record(key(task_id, address), record, MemberRecord)

    def put_unbonding(self, address: str, role: str, record: UnbondingRecord | None) -> None:
        self.put_record(key(address, role), record, UnbondingRecord)

    def put_payout(self, task_id: str, epoch: int, record: PayoutRecord) -> None:
        self.put_record(key(task_id, epoch), record, PayoutRecord)

    def put_job(self, job_id: str, record: JobRecord) -> None:
        self.put_record(job_id, record, JobRecord)

    def put_model(self, model_id: str, record: ModelRecord) -> None:
        self.put_record(model_id, record, ModelRecord)

    def add(self, table: str, k: str, delta: int) -> int:
        """Add ``delta`` to an integer entry; refuses (as a bug) to go negative."""
        value = self.tables[table].get(k, 0) + delta
        if value < 0 and table != "reputation":
            raise InvariantViolation(f"{table}[{k}] would become negative ({value})")
        self.put(table, k, value)
        return value

    def set_meta(self, name: str, value: int) -> None:
        self.put("meta", name, value)

    # -- journal ------------------------------------------------------------------------------------

    def mark(self) -> int:
        """A point to roll back to."""
        return len(self._journal)

    def rollback(self, mark: int) -> None:
        """Undo every put since ``mark``, newest first."""
        journal = self._journal
        while len(journal) > mark:
            table, k, old = journal.pop()
            if old is _MISSING:
                self.tables[table].pop(k, None)
            else:
                self.tables[table][k] = old

    def dirty(self, mark: int = 0) -> set[tuple[str, str]]:
        """The (table, key) pairs put since ``mark``."""
        return {(t, k) for t, k, _ in self._journal[mark:]}

    def changes(self, mark: int = 0) -> dict[tuple[str, str], Any]:
        """The (table, key) pairs put since ``mark``, each with its value at ``mark`` (None: absent)
        -- what a backend needs to update a digest of the state without recomputing it."""
        before: dict[tuple[str, str], Any] = {}
        for t, k, old in self._journal[mark:]:
            before.setdefault((t, k), None if old is _MISSING else old)
        return before

    def forget(self) -> None:
        """Drop the journal (after the changes are durable)."""
        self._journal.clear()

    # -- whole-state views --------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {"config": self.config.to_dict(), "tables": self.tables}

    def root(self) -> str:
        """0x-hex SHA-256 of the canonical state: equal roots, byte-identical states."""
        return to_hex(sha256(canonical(self.to_dict())))

    def copy(self) -> State:
        return State(self.config, self.tables)

    @classmethod
    def from_rows(cls, config: NetworkConfig, rows: Iterator[tuple[str, str, Any]]) -> State:
        tables: dict[str, dict[str, Any]] = {name: {} for name in TABLES}
        for table, k, value in rows:
            if table not in tables:
                raise InvariantViolation(f"unknown state table {table!r}")
            tables[table][k] = value
        return cls(config, tables)

    def supply_breakdown(self) -> dict[str, int]:
        """Where the minted supply sits; the buckets sum to ``minted`` (see check_invariants)."""
        t = self.tables
        return {
            "balances": sum(t["balances"].values()),
            "stakes": sum(t["stakes"].values()),
            "unbonding": sum(u.amount for _, u in self.records(UnbondingRecord)),
            "task_escrow": sum(task.budget for _, task in self.records(TaskRecord)),
            "task_stakes": sum(m.stake for _, m in self.records(MemberRecord)),
            "job_escrow": sum(job.escrow for _, job in self.records(JobRecord)),
            "unclaimed_payouts": sum(p.total - p.claimed for _, p in self.records(PayoutRecord)),
            "royalty_pools": sum(m.pool for _, m in self.records(ModelRecord)),
            "burned": self.meta("burned"),
        }

    def check_invariants(self) -> dict[str, int]:
        """Raise InvariantViolation unless conservation and non-negativity hold; return the breakdown
        (a row that is no valid record raises MalformedRecord)."""
        t = self.tables
        for table in ("balances", "stakes", "locks", "memberships", "claims", "nonces"):
            for k, v in t[table].items():
                if not isinstance(v, int) or v <= 0:
                    raise InvariantViolation(f"{table}[{k}] = {v!r} is not a positive integer")
        checks = [
            *(("unbonding", k, u.amount) for k, u in self.records(UnbondingRecord)),
            *(("tasks.budget", k, x.budget) for k, x in self.records(TaskRecord)),
            *(("members.stake", k, m.stake) for k, m in self.records(MemberRecord)),
            *(("jobs.escrow", k, j.escrow) for k, j in self.records(JobRecord)),
            *(("payouts.unclaimed", k, p.total - p.claimed) for k, p in self.records(PayoutRecord)),
            *(("models.pool", k, m.pool) for k, m in self.records(ModelRecord)),
        ]
        for what, k, v in checks:
            if v < 0:
                raise InvariantViolation(f"{what}[{k}] = {v!r} is negative")
        breakdown = self.supply_breakdown()
        total = sum(breakdown.values())
        minted = self.meta("minted")
        if total != minted:
            raise InvariantViolation(f"conservation broken: buckets sum to {total}, minted {minted}")
        return {**breakdown, "minted": minted}
