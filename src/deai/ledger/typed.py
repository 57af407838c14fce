"""EIP-712 typed data of a transaction: what a contract checks to accept a relayed transaction.

Each transaction type is an EIP-712 struct named after its class, with the sender and nonce first
and then its fields in declaration order, e.g.::

    Transfer(address sender,uint256 nonce,address to,uint256 amount)

in the domain ``EIP712Domain(string name,string version,bytes32 salt)`` = ("deai", "1",
keccak256(network)). The network id is the replay domain, as for the EIP-191 signature: give every
chain deployment its own network id. Field kinds map to Solidity types: addresses (an absent
optional one is the zero address), hashes ``bytes32`` (absent: zero), roles ``uint8`` (their index
in ``ROLES``), labels ``string``, booleans ``bool``, lists ``bytes32[]`` / ``address[]`` and integers
``uint256`` (``int256`` for a signed range).

:func:`typed_digest` is what the sender signs (:meth:`deai.ledger.tx.SignedTx.create` makes this
second signature beside the EIP-191 one); :func:`abi_args` / :func:`tx_from_abi` convert a
transaction to and from the arguments of the contract function of the same ``kind``.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import coincurve

from deai.core.accounts import Account, check_address
from deai.core.encoding import keccak256
from deai.ledger.config import ROLES
from deai.ledger.tx import (
    Address,
    Addresses,
    Bool,
    Hash,
    Hashes,
    Label,
    OptAddress,
    OptHash,
    Proof,
    Role,
    Tx,
)

__all__ = [
    "DOMAIN_TYPE",
    "TypedField",
    "abi_args",
    "domain_separator",
    "recover_typed",
    "sign_typed",
    "struct_fields",
    "struct_type",
    "tx_from_abi",
    "typed_digest",
]

DOMAIN_TYPE = "EIP712Domain(string name,string version,bytes32 salt)"
_ZERO = bytes(32)


def _word_address(v: str | None) -> bytes:
    return _ZERO if v is None else bytes(12) + bytes.fromhex(v[2:])


def _word_hash(v: str | None) -> bytes:
    return _ZERO if v is None else bytes.fromhex(v[2:])


def _abi_address(v: str | None) -> str:
    return "0x" + "00" * 20 if v is None else v


def _abi_hash(v: str | None) -> bytes:
    return _ZERO if v is None else bytes.fromhex(v[2:])


def _from_address(v: str, optional: bool) -> str | None:
    a = check_address(v)
    return None if optional and int(a, 16) == 0 else a


def _from_hash(v: bytes, optional: bool) -> str | None:
    b = bytes(v)
    return None if optional and b == _ZERO else "0x" + b.hex()


@dataclass(frozen=True)
class TypedField:
    """One struct field: its Solidity ``type``, its 32-byte EIP-712 ``word`` and its ABI argument."""

    name: str
    type: str
    word: Callable[[Any], bytes]
    to_abi: Callable[[Any], Any]
    from_abi: Callable[[Any], Any]


def _field(name: str, hint: Any) -> TypedField:
    if hint in (Address, OptAddress):
        opt = hint == OptAddress
        return TypedField(name, "address", _word_address, _abi_address, lambda v: _from_address(v, opt))
    if hint in (Hash, OptHash):
        opt = hint == OptHash
        return TypedField(name, "bytes32", _word_hash, _abi_hash, lambda v: _from_hash(v, opt))
    if hint == Role:
        return TypedField(
            name, "uint8", lambda v: ROLES.index(v).to_bytes(32, "big"), ROLES.index, lambda v: ROLES[v]
        )
    if hint == Bool:
        return TypedField(name, "bool", lambda v: int(v).to_bytes(32, "big"), bool, bool)
    if hint == Label:
        return TypedField(name, "string", lambda v: keccak256(v.encode()), str, str)
    if hint in (Hashes, Proof):
        return TypedField(
            name,
            "bytes32[]",
            lambda v: keccak256(b"".join(_word_hash(h) for h in v)),
            lambda v: [_abi_hash(h) for h in v],
            lambda v: tuple(_from_hash(h, False) for h in v),
        )
    if hint == Addresses:
        return TypedField(
            name,
            "address[]",
            lambda v: keccak256(b"".join(_word_address(a) for a in v)),
            list,
            lambda v: tuple(check_address(a) for a in v),
        )
    check = hint.__metadata__[0]
    if getattr(check, "signed", None) is None:
        raise TypeError(f"field {name}: no EIP-712 type for {hint!r}")
    if check.signed:
        return TypedField(name, "int256", lambda v: (v % 2**256).to_bytes(32, "big"), int, int)
    return TypedField(name, "uint256", lambda v: v.to_bytes(32, "big"), int, int)


_FIELDS: dict[type, tuple[TypedField, ...]] = {}
_TYPE_HASHES: dict[type, bytes] = {}


def struct_fields(cls: type[Tx]) -> tuple[TypedField, ...]:
    """The typed fields of a transaction class (after sender and nonce), in declaration order."""
    fields = _FIELDS.get(cls)
    if fields is None:
        hints = typing.get_type_hints(cls, include_extras=True)
        fields = tuple(_field(f.name, hints[f.name]) for f in dataclasses.fields(cls))  # type: ignore[arg-type]
        _FIELDS[cls] = fields
    return fields


def struct_type(cls: type[Tx]) -> str:
    """The EIP-712 type string of a transaction class."""
    parts = ["address sender", "uint256 nonce", *(f"{f.type} {f.name}" for f in struct_fields(cls))]
    return f"{cls.__name__}({','.join(parts)})"


def _type_hash(cls: type[Tx]) -> bytes:
    h = _TYPE_HASHES.get(cls)
    if h is None:
        h = _TYPE_HASHES[cls] = keccak256(struct_type(cls).encode())
    return h


@functools.cache
def domain_separator(network: str) -> bytes:
    return keccak256(
        keccak256(DOMAIN_TYPE.encode()) + keccak256(b"deai") + keccak256(b"1") + keccak256(network.encode())
    )


def typed_digest(tx: Tx, sender: str, nonce: int, network: str) -> bytes:
    """The 32-byte EIP-712 digest that the sender signs."""
    cls = type(tx)
    # a nonce outside uint256 (create does not check it; every ledger refuses it) wraps around
    words = [_type_hash(cls), _word_address(sender), (nonce % 2**256).to_bytes(32, "big")]
    words += [f.word(getattr(tx, f.name)) for f in struct_fields(cls)]
    return keccak256(b"\x19\x01" + domain_separator(network) + keccak256(b"".join(words)))


def sign_typed(account: Account, digest: bytes) -> bytes:
    """65 bytes r, s, v (v in {27, 28}) over ``digest``, as ``ecrecover`` takes them."""
    sig = coincurve.PrivateKey(account.private_key).sign_recoverable(digest, hasher=None)
    return sig[:64] + bytes([sig[64] + 27])


def recover_typed(digest: bytes, signature: bytes) -> bytes | None:
    """The 20-byte signer of ``digest`` or None (bad signature)."""
    try:
        if len(signature) != 65 or signature[64] not in (27, 28):
            return None
        public = coincurve.PublicKey.from_signature_and_message(
            signature[:64] + bytes([signature[64] - 27]), digest, hasher=None
        )
        return keccak256(public.format(compressed=False)[1:])[-20:]
    except Exception:
        return None


def abi_args(tx: Tx) -> list[Any]:
    """The transaction's fields as arguments of its contract function (after sender and nonce)."""
    return [f.to_abi(getattr(tx, f.name)) for f in struct_fields(type(tx))]


def tx_from_abi(cls: type[Tx], args: dict[str, Any]) -> Tx:
    """Rebuild a transaction from decoded contract arguments (checked like any foreign body)."""
    body = {f.name: f.from_abi(args[f.name]) for f in struct_fields(cls)}
    return cls.from_body(body)
