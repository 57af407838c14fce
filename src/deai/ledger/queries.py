"""The ledger's read API by name: what a hub answers to ``ledger.query`` and what a participant
that reads the chain itself asks its own view of the ledger -- one table, one answer format.

:data:`QUERIES` maps each query name to its argument names (the :class:`~deai.ledger.base.Ledger`
method of that name takes them in this order). :func:`answer_query` checks the arguments (known
query, exactly its arguments, addresses well formed) and returns the answer as JSON-ready data: a
record as its stored JSON row, a head as ``{height, hash, time}``, numbers and hashes as they are.
A bad query raises :class:`~deai.ledger.errors.LedgerError` with a message naming the fault.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deai.core.accounts import check_address
from deai.core.errors import EncodingError
from deai.ledger.base import Ledger
from deai.ledger.errors import LedgerError
from deai.ledger.records import Record

__all__ = ["QUERIES", "answer_query"]

QUERIES: dict[str, tuple[str, ...]] = {
    "balance": ("address",),
    "nonce": ("address",),
    "stake": ("address", "role"),
    "locked": ("address", "role"),
    "reputation": ("address", "role"),
    "task": ("task_id",),
    "member": ("task_id", "address"),
    "checkpoint": ("task_id", "round"),
    "payout": ("task_id", "epoch"),
    "claimed": ("task_id", "epoch", "address"),
    "job": ("job_id",),
    "commitment": ("job_id", "executor"),
    "revealed": ("job_id", "executor"),
    "model": ("model_id",),
    "head": (),
    "supply": (),
    "state_root": (),
}


def answer_query(ledger: Ledger, q: Any, args: Any) -> Any:
    """``ledger``'s answer to query ``q`` with ``args`` (a mapping of its argument names), as JSON data."""
    if not isinstance(q, str) or q not in QUERIES:
        raise LedgerError(f"unknown query {str(q)[:40]!r}; known: {sorted(QUERIES)}")
    if not isinstance(args, Mapping) or set(args) != set(QUERIES[q]):
        raise LedgerError(f"query {q} takes exactly the arguments {list(QUERIES[q])}")
    values = dict(args)
    for k in ("address", "executor"):
        if k in values:
            try:
                values[k] = check_address(values[k])
            except (EncodingError, TypeError) as exc:
                raise LedgerError(f"query {q}, argument {k}: {exc}") from None
    try:
        result = getattr(ledger, q)(*[values[k] for k in QUERIES[q]])
    except EncodingError as exc:
        raise LedgerError(f"query {q}: {exc}") from None
    if q == "head":
        return {"height": result.height, "hash": result.hash, "time": result.time}
    if isinstance(result, Record):  # the stored JSON row; a client parses it back
        return result.to_json()
    return result
