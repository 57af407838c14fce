"""Typed transactions and their signed wire form.

A transaction type is a frozen dataclass registered under its ``kind`` with :func:`register`; its
fields are annotated with the field kinds below, which parse and check untrusted input::

    @register("transfer")
    @dataclass(frozen=True)
    class Transfer(Tx):
        to: Address
        amount: Amount

A :class:`SignedTx` wraps ``{kind, body, sender, nonce, network}``; the sender signs the canonical
(RFC 8785) bytes of these five fields with EIP-191 (:meth:`deai.core.accounts.Account.sign`), so an
EVM contract or any wallet can check the same signature. Nonces run 0, 1, 2, ... per sender. The
wire form adds ``signature`` (0x-hex) and, optionally, ``typed_signature``: the same sender's EIP-712
signature over the same transaction (:mod:`deai.ledger.typed`), which lets a contract check a relayed
transaction itself (the EVM backend needs it; the local backends ignore it). Parsing is strict:
every field must be present and of its exact form (checksummed addresses, lowercase 0x-hex
hashes, integers in [0, 2**53)), so a transaction has exactly one encoding and its id (SHA-256 of
the signed bytes) is unambiguous.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, TypeVar

import coincurve

from deai.core.accounts import Account, check_address, recover_signer
from deai.core.encoding import canonical, from_hex, keccak256, parse_json, sha256_hex, to_hex
from deai.core.errors import BadSignature, EncodingError
from deai.ledger.config import MAX_AMOUNT, ROLES
from deai.ledger.errors import BadTxSignature, MalformedTx, TxTooLarge, UnknownTxKind

__all__ = [
    "TX_TYPES",
    "Address",
    "Addresses",
    "Amount",
    "Bool",
    "Hash",
    "Hashes",
    "Label",
    "OptAddress",
    "OptHash",
    "Positive",
    "Proof",
    "Role",
    "SignedTx",
    "Tx",
    "checked_signed_tx",
    "int_range",
    "list_of",
    "register",
    "tx_from_body",
]

MAX_LIST = 256
_HASH_RE = re.compile(r"0x[0-9a-f]{64}\Z")
_address_cache: dict[str, bool] = {}


# -- field kinds: each is a checker ``(name, value) -> value`` used as Annotated metadata -------------


def int_range(lo: int, hi: int) -> Callable[[str, Any], int]:
    """An integer field in ``[lo, hi]`` (booleans refused)."""

    def check(name: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise MalformedTx(f"field {name!r} must be an integer in [{lo}, {hi}], got {value!r:.40}")
        return value

    check.signed = lo < 0  # type: ignore[attr-defined]  # read by deai.ledger.typed (EIP-712 types)
    return check


def _address(name: str, value: Any) -> str:
    ok = _address_cache.get(value) if isinstance(value, str) else False
    if ok is None:
        try:
            ok = check_address(value) == value
        except EncodingError:
            ok = False
        if len(_address_cache) < 100_000:
            _address_cache[value] = ok
    if not ok:
        raise MalformedTx(f"field {name!r} must be a checksummed 0x address, got {str(value)[:50]!r}")
    return value


def _hash(name: str, value: Any) -> str:
    if not isinstance(value, str) or not _HASH_RE.match(value):
        raise MalformedTx(f"field {name!r} must be a 32-byte lowercase 0x-hex hash, got {str(value)[:70]!r}")
    return value


def _optional(check: Callable[[str, Any], Any]) -> Callable[[str, Any], Any]:
    def opt(name: str, value: Any) -> Any:
        return None if value is None else check(name, value)

    return opt


def _role(name: str, value: Any) -> str:
    if value not in ROLES:
        raise MalformedTx(f"field {name!r} must be one of {', '.join(ROLES)}, got {str(value)[:40]!r}")
    return value


def _bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise MalformedTx(f"field {name!r} must be true or false")
    return value


def _label(name: str, value: Any) -> str:
    if not isinstance(value, str) or len(value) > 64 or not value.isprintable():
        raise MalformedTx(f"field {name!r} must be a printable string of at most 64 characters")
    return value


def list_of(check: Callable[[str, Any], Any], *, max_len: int = MAX_LIST, unique: bool = False):
    """A list field (a tuple in the dataclass) whose items pass ``check``."""

    def check_list(name: str, value: Any) -> tuple:
        if not isinstance(value, list | tuple) or len(value) > max_len:
            raise MalformedTx(f"field {name!r} must be a list of at most {max_len} items")
        items = tuple(check(f"{name}[{i}]", v) for i, v in enumerate(value))
        if unique and len(set(items)) != len(items):
            raise MalformedTx(f"field {name!r} has repeated items")
        return items

    return check_list


Amount = Annotated[int, int_range(0, MAX_AMOUNT)]
Positive = Annotated[int, int_range(1, MAX_AMOUNT)]
Address = Annotated[str, _address]
OptAddress = Annotated[str | None, _optional(_address)]
Hash = Annotated[str, _hash]
OptHash = Annotated[str | None, _optional(_hash)]
Role = Annotated[str, _role]
Bool = Annotated[bool, _bool]
Label = Annotated[str, _label]
Hashes = Annotated[tuple[str, ...], list_of(_hash, max_len=MAX_LIST)]
Proof = Annotated[tuple[str, ...], list_of(_hash, max_len=64)]
Addresses = Annotated[tuple[str, ...], list_of(_address, max_len=64, unique=True)]


# -- transaction types ------------------------------------------------------------------------------


class Tx:
    """Base of every transaction type (a frozen dataclass registered by ``kind``)."""

    kind: ClassVar[str]
    _checks: ClassVar[dict[str, Callable[[str, Any], Any]]]

    def to_body(self) -> dict[str, Any]:
        """The body as plain JSON values (tuples become lists when encoded)."""
        return {f: getattr(self, f) for f in self._checks}

    @classmethod
    def from_body(cls, body: Any) -> Tx:
        """Parse and check an untrusted body (every field present, none unknown)."""
        if not isinstance(body, dict):
            raise MalformedTx(f"{cls.kind}: body must be an object")
        if body.keys() != cls._checks.keys():
            missing = sorted(set(cls._checks) - set(body))
            unknown = sorted(set(body) - set(cls._checks))
            raise MalformedTx(f"{cls.kind}: missing field(s) {missing}, unknown field(s) {unknown}")
        return cls(**{name: check(name, body[name]) for name, check in cls._checks.items()})

    def check(self) -> Tx:
        """Re-check the fields of a locally built transaction (raises MalformedTx)."""
        self.from_body(self.to_body())
        return self


TX_TYPES: dict[str, type[Tx]] = {}
_TxT = TypeVar("_TxT", bound=Tx)


def register(kind: str) -> Callable[[type[_TxT]], type[_TxT]]:
    """Class decorator: register a frozen dataclass ``Tx`` subclass under ``kind``."""

    def deco(cls: type[_TxT]) -> type[_TxT]:
        if kind in TX_TYPES:
            raise ValueError(f"transaction kind {kind!r} registered twice")
        hints = typing.get_type_hints(cls, include_extras=True)
        if not dataclasses.is_dataclass(cls):
            raise TypeError(f"{cls.__name__} must be a dataclass")
        checks = {}
        for f in dataclasses.fields(cls):
            if f.name == "kind":
                raise TypeError(f"{cls.__name__}: a field may not be named 'kind' (it is the type's name)")
            meta = getattr(hints[f.name], "__metadata__", None)
            if not meta:
                raise TypeError(f"{cls.__name__}.{f.name} needs an annotated field kind")
            checks[f.name] = meta[0]
        cls.kind = kind
        cls._checks = checks
        TX_TYPES[kind] = cls
        return cls

    return deco


def tx_from_body(kind: Any, body: Any) -> Tx:
    cls = TX_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise UnknownTxKind(f"unknown transaction kind {str(kind)[:40]!r}")
    return cls.from_body(body)


def _recover_fast(data: bytes, signature: bytes) -> bytes | None:
    """The 20-byte address that signed ``data`` (EIP-191), straight from libsecp256k1, or None.

    Same result as :func:`deai.core.accounts.recover_signer` (a test checks it) at half the cost:
    one keccak fewer and no checksum formatting. Any failure returns None, and the caller then
    takes the slow path, which names the problem."""
    try:
        v = signature[64] - 27 if signature[64] >= 27 else signature[64]
        if len(signature) != 65 or v not in (0, 1):
            return None
        digest = keccak256(b"\x19Ethereum Signed Message:\n" + str(len(data)).encode() + data)
        public = coincurve.PublicKey.from_signature_and_message(
            signature[:64] + bytes([v]), digest, hasher=None
        )
        return keccak256(public.format(compressed=False)[1:])[-20:]
    except Exception:
        return None


# -- signed form ------------------------------------------------------------------------------------

_SIGNED_FIELDS = ("kind", "body", "sender", "nonce", "network")
_WIRE_FIELDS = frozenset((*_SIGNED_FIELDS, "signature"))
_WIRE_FIELDS_TYPED = _WIRE_FIELDS | {"typed_signature"}
_check_nonce = int_range(0, MAX_AMOUNT)


@dataclass(frozen=True)
class SignedTx:
    """A transaction signed by ``sender``. Build with :meth:`create`; parse with :meth:`from_bytes`.
    ``typed_signature`` (EIP-712, see :mod:`deai.ledger.typed`) is not part of the signed bytes nor
    of the id; a contract checks it, the local backends ignore it."""

    tx: Tx
    sender: str
    nonce: int
    network: str
    signature: bytes
    typed_signature: bytes | None = None

    @staticmethod
    def payload(tx: Tx, sender: str, nonce: int, network: str) -> dict[str, Any]:
        return {"kind": tx.kind, "body": tx.to_body(), "sender": sender, "nonce": nonce, "network": network}

    @classmethod
    def create(cls, account: Account, tx: Tx, *, nonce: int, network: str) -> SignedTx:
        """Sign ``tx`` as ``account`` with ``nonce`` for ``network``."""
        from deai.ledger.typed import sign_typed, typed_digest  # typed imports this module

        tx.check()
        data = canonical(cls.payload(tx, account.address, nonce, network))
        typed = sign_typed(account, typed_digest(tx, account.address, nonce, network))
        stx = cls(tx, account.address, nonce, network, account.sign(data), typed)
        object.__setattr__(stx, "_bytes", data)
        return stx

    @property
    def signing_bytes(self) -> bytes:
        """The canonical bytes that the signature covers (what the log stores)."""
        data = self.__dict__.get("_bytes")
        if data is None:
            data = canonical(self.payload(self.tx, self.sender, self.nonce, self.network))
            object.__setattr__(self, "_bytes", data)
        return data

    @property
    def id(self) -> str:
        """0x-less SHA-256 hex of the signed bytes."""
        return sha256_hex(self.signing_bytes)

    @property
    def kind(self) -> str:
        return self.tx.kind

    def verify_signature(self) -> None:
        """Raise BadTxSignature unless ``signature`` was made by ``sender`` over the signed bytes."""
        if _recover_fast(self.signing_bytes, self.signature) == bytes.fromhex(self.sender[2:]):
            return
        try:  # the slow path names what is wrong
            signer = recover_signer(self.signing_bytes, self.signature)
        except BadSignature as exc:
            raise BadTxSignature(f"transaction signature is invalid: {exc}") from exc
        if signer != self.sender:
            raise BadTxSignature(f"transaction is signed by {signer}, but its sender is {self.sender}")

    def verify_typed_signature(self) -> None:
        """Raise BadTxSignature unless ``typed_signature`` is the sender's EIP-712 signature."""
        from deai.ledger.typed import recover_typed, typed_digest

        if self.typed_signature is None:
            raise BadTxSignature("transaction has no typed (EIP-712) signature; sign it with SignedTx.create")
        digest = typed_digest(self.tx, self.sender, self.nonce, self.network)
        if recover_typed(digest, self.typed_signature) != bytes.fromhex(self.sender[2:]):
            raise BadTxSignature(f"the typed signature is not {self.sender}'s over this transaction")

    # -- wire form ----------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        out = {
            **self.payload(self.tx, self.sender, self.nonce, self.network),
            "signature": to_hex(self.signature),
        }
        if self.typed_signature is not None:
            out["typed_signature"] = to_hex(self.typed_signature)
        return out

    def to_bytes(self) -> bytes:
        return canonical(self.to_dict())

    @classmethod
    def from_dict(cls, data: Any) -> SignedTx:
        """Parse the wire form, checking every field (not the signature: see verify_signature)."""
        if not isinstance(data, dict):
            raise MalformedTx("a transaction must be a JSON object")
        if data.keys() != _WIRE_FIELDS and data.keys() != _WIRE_FIELDS_TYPED:
            missing = sorted(_WIRE_FIELDS - set(data))
            unknown = sorted(set(data) - _WIRE_FIELDS_TYPED)
            raise MalformedTx(f"transaction: missing field(s) {missing}, unknown field(s) {unknown}")
        tx = tx_from_body(data["kind"], data["body"])
        sender = _address("sender", data["sender"])
        nonce = _check_nonce("nonce", data["nonce"])
        network = data["network"]
        if not isinstance(network, str) or not 0 < len(network) <= 64:
            raise MalformedTx("field 'network' must be a string of 1 to 64 characters")
        try:
            signature = from_hex(data["signature"], length=65, what="signature")
            typed = None  # absent or a signature: one encoding per transaction
            if "typed_signature" in data:
                typed = from_hex(data["typed_signature"], length=65, what="typed signature")
        except EncodingError as exc:
            raise MalformedTx(f"field 'signature' or 'typed_signature': {exc}") from exc
        return cls(tx, sender, nonce, network, signature, typed)

    @classmethod
    def from_bytes(cls, raw: bytes, *, max_bytes: int = 65_536) -> SignedTx:
        """Parse wire bytes (JSON). Refuses oversized input before parsing it."""
        if not isinstance(raw, bytes | bytearray):
            raise MalformedTx(f"a transaction must be bytes, got {type(raw).__name__}")
        if len(raw) > max_bytes:
            raise TxTooLarge(f"transaction is {len(raw)} bytes, over the limit of {max_bytes}")
        try:  # bounded depth and numbers before parsing (anyone can submit a transaction)
            data = parse_json(raw, max_bytes=max_bytes, what="transaction")
        except EncodingError as exc:
            raise MalformedTx(f"transaction is not valid JSON: {exc}") from None
        return cls.from_dict(data)

    @classmethod
    def from_signed_bytes(cls, signed: bytes, signature: bytes) -> SignedTx:
        """Rebuild from the signed bytes and signature (as stored in the log); checks canonical form."""
        try:  # a log may come from another party (a hub's ledger.entries): parse it as foreign bytes
            data = parse_json(signed, max_bytes=1 << 20, what="logged transaction")
        except EncodingError as exc:
            raise MalformedTx(f"logged transaction is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise MalformedTx("logged transaction is not an object")
        stx = cls.from_dict({**data, "signature": to_hex(signature)})
        if stx.signing_bytes != bytes(signed):
            raise MalformedTx("logged transaction bytes are not in canonical form")
        return stx


def checked_signed_tx(item: SignedTx | bytes, max_bytes: int) -> SignedTx:
    """What every backend does first with a submitted transaction: bytes parsed (bounded by
    ``max_bytes``), an in-process :class:`SignedTx` checked as if it had been parsed (fields,
    checksummed sender, size), then its signature verified. Raises the matching ledger error."""
    if isinstance(item, bytes | bytearray):
        stx = SignedTx.from_bytes(bytes(item), max_bytes=max_bytes)
    elif isinstance(item, SignedTx):
        stx = item
        try:
            stx.tx.check()
            if check_address(stx.sender) != stx.sender:
                raise MalformedTx("sender must be a checksummed address")
        except EncodingError as exc:
            raise MalformedTx(f"sender: {exc}") from exc
        if len(stx.signing_bytes) > max_bytes:
            raise TxTooLarge(f"transaction is {len(stx.signing_bytes)} bytes, over {max_bytes}")
    else:
        raise MalformedTx(f"expected a SignedTx or bytes, got {type(item).__name__}")
    stx.verify_signature()
    return stx
