"""Follow the ledger contract's logs: events with a cursor, histories and a replayed mirror state.

Every applied transaction emits ``Applied(height, sender, nonce, time, head)`` and then the events
of its rule, in the order and with the fields the Python rules emit. :class:`Follower` reads the
logs from the deployment block on (``eth_getLogs`` from a block cursor), turns them into
:class:`~deai.ledger.rules.base.Event` records numbered by a global ``seq``, rebuilds each applied
transaction from its calldata (or takes it from ``known``, see :class:`Follower`), and replays it
through the reference state machine (:func:`deai.ledger.machine.apply`) into a mirror
:class:`~deai.ledger.state.State`. Where the mirror's events differ from the chain's, or the
reference machine refuses what the contract accepted, the follower records the first
``divergence`` (``verify`` reports it).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from web3 import Web3
from web3._utils.events import get_event_data

from deai.ledger.base import Head, TxRecord
from deai.ledger.config import ROLES, NetworkConfig
from deai.ledger.errors import LedgerError
from deai.ledger.machine import apply
from deai.ledger.rules.base import Context, Event
from deai.ledger.state import State
from deai.ledger.tx import TX_TYPES, SignedTx, Tx
from deai.ledger.typed import tx_from_abi

__all__ = ["Applied", "Follower", "event_from_log"]

# bytes32 event fields that are None when zero (an optional hash of the transaction)
_OPTIONAL = {
    "ModelRegistered": frozenset({"task", "job"}),
    "JobRegistered": frozenset({"task"}),
    "JobResolved": frozenset({"digest"}),
}
_OPTIONAL_ANY = frozenset({"job"})


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _plain(name: str, abi_type: str, value: Any, optional: frozenset[str]) -> Any:
    if abi_type == "bytes32":
        b = bytes(value)
        return None if name in optional and b == bytes(32) else "0x" + b.hex()
    if abi_type == "uint8" and name == "role":
        return ROLES[value]
    if abi_type.endswith("[]"):
        return list(value)
    return value


def event_from_log(abi: dict[str, Any], args: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A decoded contract log as a deai event (kind, data)."""
    optional = _OPTIONAL.get(abi["name"], _OPTIONAL_ANY)
    data = {i["name"]: _plain(i["name"], i["type"], args[i["name"]], optional) for i in abi["inputs"]}
    return _snake(abi["name"]), data


@dataclass
class Applied:
    """One applied transaction as the chain logged it."""

    height: int
    sender: str
    nonce: int
    time: int
    head: str
    tx_hash: bytes
    events: list[Event] = field(default_factory=list)
    stx: SignedTx | None = None  # the transaction, once read (from ``known`` or the chain)


class Follower:
    """Reads the contracts' logs from ``from_block`` and keeps events, histories and a mirror.
    ``jobs``: the Jobs contract beside the Ledger ``contract`` (both logs, in log order).

    ``known`` (tx hash -> :class:`~deai.ledger.tx.SignedTx`): the transactions this process relayed
    and the follower has not read back yet (each entry then keeps its transaction, ``Applied.stx``,
    which ``replay`` passes on, so ``verify``'s fresh follower fetches none). This is sound: a
    transaction's hash commits to its calldata, and the calldata is the ABI encoding of exactly that
    signed transaction (``EvmLedger`` built it), so the chain's copy of a known hash decodes to the
    same transaction. Transactions relayed by others are fetched and decoded from the chain."""

    def __init__(
        self,
        w3: Web3,
        contract: Any,
        config: NetworkConfig,
        from_block: int,
        *,
        jobs: Any = None,
        known: dict[bytes, SignedTx] | None = None,
    ) -> None:
        self.w3, self.contract, self.config = w3, contract, config
        self.contracts = {c.address: c for c in (contract, jobs) if c is not None}
        self.from_block = from_block
        self.block = from_block - 1  # the last block read
        self.applied: list[Applied] = []  # every applied transaction read, in order
        self.mirror = State(config)
        self.head = Head(0, config.genesis_hash, 0)
        self.events: list[Event] = []
        self.histories: dict[str, list[TxRecord]] = {}
        self.divergence: str | None = None
        self.known: dict[bytes, SignedTx] = {} if known is None else known
        self._abis = {}
        for item in [i for c in self.contracts.values() for i in c.abi]:
            if item["type"] == "event":
                topic = Web3.keccak(text=f"{item['name']}({','.join(i['type'] for i in item['inputs'])})")
                self._abis[bytes(topic)] = item

    def sync(self, to: int | None = None) -> list[Applied]:
        """Read the logs of the blocks since the last call up to block ``to`` (None: the latest);
        returns the transactions applied."""
        latest = self.w3.eth.block_number if to is None else to
        if latest <= self.block:
            return []
        logs = self.w3.eth.get_logs(
            {"address": list(self.contracts), "fromBlock": self.block + 1, "toBlock": latest}
        )
        applied = self._decode(logs)
        for entry in applied:  # every read before the cursor moves: a node that goes away midway
            entry.stx = self._signed(entry)  # leaves the follower as it was
        self.block = latest
        for entry in applied:  # each entry keeps its transaction now
            self.known.pop(entry.tx_hash, None)
        self._take(applied)
        return applied

    def replay(self, entries: Sequence[Applied], block: int) -> None:
        """Replay into this fresh follower the entries another follower of the same contracts
        read from the chain up to ``block`` (its ``applied``), without reading the logs again:
        the logs of mined blocks do not change (no reorganisation, as for the cursor itself), and
        a missing or extra transaction would change the replayed head, which ``verify`` compares
        with the contract's. The replay itself (mirror, events, histories) starts from nothing."""
        if self.block >= self.from_block:
            raise LedgerError("replay() is for a fresh follower")
        self._take(entries)
        self.block = block

    def _decode(self, logs: Sequence[Any]) -> list[Applied]:
        applied: list[Applied] = []
        seq = len(self.events)
        for log in logs:
            abi = self._abis.get(bytes(log["topics"][0]))
            if abi is None:
                continue
            args = get_event_data(self.w3.codec, abi, log)["args"]
            if abi["name"] == "Applied":
                applied.append(
                    Applied(
                        args["height"],
                        args["sender"],
                        args["nonce"],
                        args["time"],
                        "0x" + bytes(args["head"]).hex(),
                        bytes(log["transactionHash"]),
                    )
                )
                continue
            kind, data = event_from_log(abi, args)
            current = applied[-1]
            current.events.append(Event(kind, data, current.height, seq))
            seq += 1
        return applied

    def _take(self, applied: Sequence[Applied]) -> None:
        for entry in applied:
            self.applied.append(entry)
            self.events.extend(entry.events)
            self._replay(entry)

    def _signed(self, entry: Applied) -> SignedTx:
        if entry.stx is not None:
            return entry.stx
        stx = self.known.get(entry.tx_hash)
        if stx is not None:
            return stx
        raw = self.w3.eth.get_transaction(entry.tx_hash)  # type: ignore[arg-type]
        fn, args = self.contracts[raw["to"]].decode_function_input(raw["input"])
        tx: Tx = tx_from_abi(TX_TYPES[fn.fn_name], args)
        return SignedTx(tx, args["sender"], args["nonce"], self.config.network, b"")

    def _replay(self, entry: Applied) -> None:
        stx = self._signed(entry)
        ctx = Context(entry.height, entry.time, self.head.hash)
        try:
            events = apply(self.mirror, stx, ctx)
        except LedgerError as exc:
            events = []
            self._diverged(f"height {entry.height}: the reference machine refuses what the chain took: {exc}")
        self.mirror.forget()
        ours = [(e.kind, e.data) for e in events]
        theirs = [(e.kind, e.data) for e in entry.events]
        if ours != theirs:
            self._diverged(f"height {entry.height}: events differ: chain {theirs}, reference {ours}")
        self.head = Head(entry.height + 1, entry.head, entry.time)
        record = TxRecord(
            entry.height, entry.time, stx.kind, stx.sender, stx.nonce, stx.tx.to_body(), entry.head
        )
        self.histories.setdefault(stx.sender, []).append(record)

    def _diverged(self, problem: str) -> None:
        if self.divergence is None:
            self.divergence = problem
