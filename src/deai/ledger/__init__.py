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
  :class:`SqliteLedger` (durable, default) and :class:`MemoryLedger` implement it.
- :mod:`deai.ledger.txs` holds the transaction types (frozen dataclasses, registered by ``kind``);
  :class:`SignedTx` is the signed wire form.
- :func:`apply` is the pure state machine over a :class:`State`; every refusal is a
  :class:`LedgerError` subclass from :mod:`deai.ledger.errors`.
- :mod:`deai.ledger.merkle` (payout and provenance trees), :mod:`deai.ledger.draw` (executor draw)
  and :mod:`deai.ledger.commitments` (commit-reveal hashes) are shared with protocol code.

See ``docs/ledger.md`` for the transaction set, the state, the invariants and the trust model.
"""

from deai.ledger import errors, txs
from deai.ledger.base import Head, Ledger, ManualClock, Receipt, TxRecord, VerifyReport
from deai.ledger.commitments import model_id, new_salt, replication_commitment, result_commitment
from deai.ledger.config import BPS, COMPUTE, DATA, HOST, MAX_AMOUNT, ROLES, NetworkConfig
from deai.ledger.draw import draw_executors, draw_seed, draw_weight
from deai.ledger.errors import LedgerError
from deai.ledger.log import LogEntry, replay
from deai.ledger.machine import Context, Event, apply, apply_pure
from deai.ledger.memory import MemoryLedger
from deai.ledger.merkle import AllocationTree, MerkleTree, leaf_hash, payout_tree, shares_tree, verify_proof
from deai.ledger.sqlite import SqliteLedger
from deai.ledger.state import State
from deai.ledger.tx import TX_TYPES, SignedTx, Tx

__all__ = [
    "BPS",
    "COMPUTE",
    "DATA",
    "HOST",
    "MAX_AMOUNT",
    "ROLES",
    "TX_TYPES",
    "AllocationTree",
    "Context",
    "Event",
    "Head",
    "Ledger",
    "LedgerError",
    "LogEntry",
    "ManualClock",
    "MemoryLedger",
    "MerkleTree",
    "NetworkConfig",
    "Receipt",
    "SignedTx",
    "SqliteLedger",
    "State",
    "Tx",
    "TxRecord",
    "VerifyReport",
    "apply",
    "apply_pure",
    "draw_executors",
    "draw_seed",
    "draw_weight",
    "errors",
    "leaf_hash",
    "model_id",
    "new_salt",
    "payout_tree",
    "replay",
    "replication_commitment",
    "result_commitment",
    "shares_tree",
    "txs",
    "verify_proof",
]
