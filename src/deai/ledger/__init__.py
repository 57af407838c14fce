"""ledger: the trust and incentive state machine of deai, with embedded backends.

Quick start::

    from deai.core import Account
    from deai.ledger import COMPUTE, NetworkConfig, SqliteLedger, txs

    minter, alice = Account.from_seed("net", 0), Account.from_seed("net", 1)  # simulations only
    ledger = SqliteLedger("ledger.sqlite", NetworkConfig(minter=minter.address, network="demo"))
    ledger.send(minter, txs.Mint(to=alice.address, amount=10_000))
    ledger.send(alice, txs.Stake(role=COMPUTE, amount=2_000))
    ledger.balance(alice.address), ledger.stake(alice.address, COMPUTE)

- :class:`Ledger` is the interface (submit signed transactions, queries, events, verify);
  :class:`SqliteLedger` (durable, default) and :class:`MemoryLedger` implement it, and
  :class:`EvmLedger` (the ledger contract on an EVM chain, :mod:`deai.ledger.evm`; imported on
  first use so that ``import deai.ledger`` does not load web3).
- :mod:`deai.ledger.txs` holds the transaction types (frozen dataclasses, registered by ``kind``);
  :class:`SignedTx` is the signed wire form.
- :func:`deai.ledger.machine.apply` is the pure state machine over a
  :class:`~deai.ledger.state.State`; every refusal is a :class:`LedgerError` subclass from
  :mod:`deai.ledger.errors`.
- :mod:`deai.ledger.records` holds the typed records the queries return (``ledger.job(id)`` is a
  :class:`JobRecord`, ``ledger.task(id)`` a :class:`TaskRecord`, ...); ``to_json()`` is the stored row.
- :mod:`deai.ledger.merkle` (payout and provenance trees), :mod:`deai.ledger.draw` (executor draw)
  and :mod:`deai.ledger.commitments` (commit-reveal hashes) are shared with protocol code.

See ``docs/ledger.md`` for the transaction set, the state, the invariants and the trust model.
"""

from deai.ledger import errors, records, txs
from deai.ledger.base import Ledger, ManualClock, Receipt
from deai.ledger.commitments import model_id, replication_commitment, result_commitment
from deai.ledger.config import BPS, COMPUTE, DATA, HOST, ROLES, NetworkConfig
from deai.ledger.draw import draw_executors
from deai.ledger.errors import LedgerError
from deai.ledger.log import replay
from deai.ledger.memory import MemoryLedger
from deai.ledger.merkle import payout_tree, shares_tree
from deai.ledger.records import (
    JobRecord,
    MemberRecord,
    ModelRecord,
    PayoutRecord,
    TaskRecord,
    UnbondingRecord,
)
from deai.ledger.sqlite import SqliteLedger
from deai.ledger.tx import SignedTx, Tx

__all__ = [
    "BPS",
    "COMPUTE",
    "DATA",
    "HOST",
    "ROLES",
    "JobRecord",
    "Ledger",
    "LedgerError",
    "ManualClock",
    "MemberRecord",
    "MemoryLedger",
    "ModelRecord",
    "NetworkConfig",
    "PayoutRecord",
    "Receipt",
    "SignedTx",
    "SqliteLedger",
    "TaskRecord",
    "Tx",
    "UnbondingRecord",
    "draw_executors",
    "errors",
    "model_id",
    "payout_tree",
    "records",
    "replay",
    "replication_commitment",
    "result_commitment",
    "shares_tree",
    "txs",
]


def __getattr__(name: str):
    if name == "EvmLedger":  # lazy: web3 and the contract compiler load only for the EVM backend
        from deai.ledger.evm.backend import EvmLedger

        return EvmLedger
    raise AttributeError(f"module 'deai.ledger' has no attribute {name!r}")
