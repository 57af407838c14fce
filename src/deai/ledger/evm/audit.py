"""The contracts' copy of a replayed state: what ``EvmLedger.verify`` compares row by row.

:func:`stored_state` reads, for every row of a state replayed from the chain's log, the contracts'
value of that row at one block (a :class:`~deai.ledger.evm.views.BlockView`, uncached for an
audit) and returns them as a :class:`~deai.ledger.state.State`: equal roots mean the contracts
store exactly what the reference machine computed over the transactions on chain.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from deai.ledger.config import ROLES, NetworkConfig
from deai.ledger.evm.views import BlockView, b32
from deai.ledger.state import State

__all__ = ["stored_state"]

_META_VIEWS = {"height": "height", "time": "clock", "minted": "minted", "burned": "burned"}


def stored_state(view: BlockView, ref: State, config: NetworkConfig) -> State:
    """The contracts' values (at ``view.block``) of every row of ``ref`` (the replayed state)."""
    rows: list[tuple[str, str, Any]] = []
    for table, items in ref.tables.items():
        for k in items:
            value = _row(view, table, k.split("|"), ref)
            if value is not None:
                rows.append((table, k, value))
    return State.from_rows(config, iter(rows))


def _row(view: BlockView, table: str, a: list[str], ref: State) -> Any:
    """The contracts' value of row ``a`` (the key's parts) of ``table``, as the state stores it."""
    if table == "meta":
        return view.view(_META_VIEWS[a[0]]) if a[0] in _META_VIEWS else ref.meta(a[0])
    if table in ("balances", "nonces"):
        return view.view(table, a[0]) or None
    if table in ("stakes", "locks", "memberships", "reputation"):
        return view.view(table, a[0], ROLES.index(a[1])) or None
    if table == "checkpoints":
        return view.checkpoint(a[0], int(a[1]))
    if table == "claims":
        return view.view("claims", b32(a[0]), int(a[1]), a[2]) or None
    if table == "royalty_index":
        return view.view("royalty_index", b32(a[0]), a[1])
    if table == "commits":
        return view.duty(a[0], a[1])[0]
    if table == "reveals":
        return view.duty(a[0], a[1])[1]
    records: dict[str, Callable[[], Any]] = {
        "unbonding": lambda: view.unbonding(a[0], a[1]),
        "tasks": lambda: view.task(a[0]),
        "members": lambda: view.member(a[0], a[1]),
        "payouts": lambda: view.payout(a[0], int(a[1])),
        "models": lambda: view.model(a[0]),
        "jobs": lambda: view.job(a[0], ref.job(a[0])),
    }
    if table in records:
        record = records[table]()
        return None if record is None else record.to_json()
    return ref.tables[table]["|".join(a)]
