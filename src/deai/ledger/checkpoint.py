"""Signed checkpoints: what lets a durable ledger refuse, at start, a file edited behind its back.

Whoever can write the ledger file (a stolen disk, a careless operator, malware) can edit a balance
row, rewrite a logged transaction and recompute the chain's hashes, or cut the log short. A full
replay (``deai ledger verify``) finds each of these but costs a signature recovery and a state
transition per entry; the start-up check must be cheap. So the operator (the hub's account) signs,
after every committed batch and in the same SQLite transaction, a :class:`Checkpoint`:

    (network, genesis hash, height, head hash, state digest, event count, events head, signer)

(a copy also lives in a file beside the database, so that wiping the database is noticed too)
and on open the stored file must match it: the log's hash chain walks from the genesis hash to the
stored head and passes through ``head`` at ``height`` (nothing rewritten, nothing cut off); the
state tables hash to ``state`` and the event table chains to ``events_head``. Editing any of them
needs a new signature by the operator's key, which the file does not hold.

The state digest is incremental so that a batch costs O(rows it touched), not O(state): each row
``(table, key, value)`` maps to a 8192-bit number (SHAKE-256) and the digest is their sum modulo
2^8192 (AdHash, Bellare-Micciancio 1997); a batch subtracts the old rows and adds the new ones. The
best known way to find another set of rows with the same sum (Wagner's k-list birthday) needs about
2^(2*sqrt(8192)) ~ 2^180 work. The event table is append-only and hash-chained instead.

What a checkpoint cannot tell: a whole file swapped for an older copy with its own older checkpoint
(a restore from backup looks the same).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from deai.core.accounts import Account, recover_signer
from deai.core.encoding import canonical, to_hex
from deai.core.errors import DeaiError
from deai.ledger.errors import LedgerCorrupted

__all__ = ["EVENTS_GENESIS", "Checkpoint", "event_link", "row_point", "state_digest"]

_BITS = 8192
_MASK = (1 << _BITS) - 1
_DOMAIN = b"deai-ledger-checkpoint\n"  # not JSON: a checkpoint signature never reads as a tx's
_MAX_BYTES = 4096  # a stored checkpoint is ~700 bytes; anything larger is not one
EVENTS_GENESIS = "0x" + "00" * 32


def _framed(*parts: bytes) -> bytes:
    return b"".join(len(p).to_bytes(4, "big") + p for p in parts)


def row_point(table: str, key: str, value_json: str) -> int:
    """A state row's term in the state digest."""
    data = _framed(table.encode(), key.encode(), value_json.encode())
    return int.from_bytes(hashlib.shake_256(data).digest(_BITS // 8), "little")


def state_digest(total: int) -> str:
    """The 0x-hex SHA-256 of an accumulated sum of :func:`row_point` terms (taken mod 2^8192)."""
    return to_hex(hashlib.sha256((total & _MASK).to_bytes(_BITS // 8, "little")).digest())


def rows_total(rows: Iterable[tuple[str, str, str]]) -> int:
    """The sum of the terms of ``rows`` (table, key, value as JSON), mod 2^8192."""
    return sum(row_point(t, k, v) for t, k, v in rows) & _MASK


def event_link(prev: str, seq: int, height: int, kind: str, data_json: str) -> str:
    """The events head after appending one event to a chain whose head is ``prev``."""
    payload = _framed(
        bytes.fromhex(prev[2:]),
        seq.to_bytes(8, "big"),
        height.to_bytes(8, "big"),
        kind.encode(),
        data_json.encode(),
    )
    return to_hex(hashlib.sha256(payload).digest())


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement by ``signer`` of where the ledger stood after ``height`` entries."""

    network: str
    genesis: str
    height: int
    head: str
    state: str
    events: int
    events_head: str
    signer: str
    signature: str = ""

    def signing_bytes(self) -> bytes:
        body = {k: v for k, v in asdict(self).items() if k != "signature"}
        return _DOMAIN + canonical(body)

    @classmethod
    def create(cls, account: Account, **fields: Any) -> Checkpoint:
        unsigned = cls(**fields, signer=account.address)
        return cls(**{**asdict(unsigned), "signature": to_hex(account.sign(unsigned.signing_bytes()))})

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: object) -> Checkpoint:
        """Parse and authenticate a stored checkpoint (its signature is by its ``signer``); any
        problem raises LedgerCorrupted -- the text comes from a file anyone may have edited."""
        if not isinstance(text, str) or len(text) > _MAX_BYTES:
            raise LedgerCorrupted("the stored checkpoint is not a checkpoint")
        try:
            data = json.loads(text)
            cp = cls(**data)
            types = (str, str, int, str, str, int, str, str, str)
            if not all(type(v) is t for v, t in zip(asdict(cp).values(), types, strict=True)):
                raise TypeError("a field has the wrong type")
            signer = recover_signer(cp.signing_bytes(), bytes.fromhex(cp.signature.removeprefix("0x")))
        except (ValueError, TypeError, DeaiError) as exc:
            raise LedgerCorrupted(f"the stored checkpoint is unreadable or badly signed ({exc})") from None
        if signer != cp.signer:
            raise LedgerCorrupted(f"the stored checkpoint's signature is not by its signer {cp.signer}")
        return cp
