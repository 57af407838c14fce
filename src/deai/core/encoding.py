"""Canonical encoding and hashing.

Everything that is signed or hashed is first put in one canonical byte form: **RFC 8785 JSON
Canonicalization Scheme (JCS)**. We chose JCS over deterministic CBOR because:

- it is plain JSON, so signed messages, ledger logs and envelopes stay readable and are checkable
  from any language (JavaScript, Solidity tooling, Go) without a CBOR library;
- the rules are small and fully specified (sorted keys by UTF-16 code units, ECMAScript number form,
  no insignificant whitespace), and the ``rfc8785`` package implements them exactly;
- the cost (bytes must be hex strings, integers -- and integral floats -- must stay within
  +-2**53) is easy to live with:
  amounts are integers of the smallest unit, digests and signatures are ``0x``-hex.

Same value -> same bytes, on every machine. NaN, infinities, non-string keys and integers outside
the interoperable range are refused with :class:`~deai.core.errors.EncodingError`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any, TypeVar

import rfc8785
from eth_hash.auto import keccak as _keccak

from deai.core.errors import EncodingError

__all__ = [
    "canonical",
    "decode_canonical",
    "from_hex",
    "hash_value",
    "keccak256",
    "sha256",
    "sha256_hex",
    "to_hex",
]


def _normalize(value: Any) -> Any:
    """Turn tuples into lists and bytes into 0x-hex so JCS accepts them."""
    if isinstance(value, bytes | bytearray | memoryview):
        return to_hex(bytes(value))
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise EncodingError(f"object keys must be strings, got {type(k).__name__} {k!r}")
            out[k] = _normalize(v)
        return out
    if isinstance(value, list | tuple):
        return [_normalize(v) for v in value]
    return value


def canonical(value: Any) -> bytes:
    """Encode ``value`` (dicts, lists, str, int, float, bool, None, bytes) as RFC 8785 JSON bytes."""
    try:
        return rfc8785.dumps(_normalize(value))
    except EncodingError:
        raise
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise EncodingError(f"cannot canonicalize value: {exc}") from exc


T = TypeVar("T")


def decode_canonical(
    data: bytes,
    build: Callable[[Any], T],
    encode: Callable[[T], bytes],
    *,
    what: str,
    error: type[Exception],
    max_bytes: int,
) -> T:
    """Parse canonical JSON ``data`` from another party into ``build(value)``, refusing (with
    ``error``, naming ``what``) bytes over ``max_bytes``, bytes that are not JSON, and bytes that
    are not the canonical form of what they parse to (``encode(result) != data``): a signed or
    hashed object has exactly one byte form, so its hash is its identity."""
    if len(data) > max_bytes:
        raise error(f"{what} is {len(data)} bytes, over {max_bytes}")
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise error(f"{what} is not JSON: {exc}") from exc
    obj = build(value)
    if encode(obj) != bytes(data):
        raise error(f"{what} bytes are not in canonical form")
    return obj


def sha256(data: bytes) -> bytes:
    """SHA-256 digest (32 bytes)."""
    return hashlib.sha256(data).digest()


def sha256_hex(data: bytes) -> str:
    """SHA-256 digest as 64 lowercase hex characters (the address of a blob)."""
    return hashlib.sha256(data).hexdigest()


def keccak256(data: bytes) -> bytes:
    """Keccak-256 digest (32 bytes), the hash Ethereum uses."""
    return _keccak(data)


def hash_value(value: Any) -> str:
    """SHA-256 of the canonical encoding of ``value``, as 0x-hex."""
    return to_hex(sha256(canonical(value)))


def to_hex(data: bytes) -> str:
    return "0x" + bytes(data).hex()


def from_hex(text: str, *, length: int | None = None, what: str = "value") -> bytes:
    """Parse 0x-hex (or plain hex); check the byte length when given."""
    if not isinstance(text, str):
        raise EncodingError(f"{what} must be a hex string, got {type(text).__name__}")
    body = text[2:] if text.startswith(("0x", "0X")) else text
    try:
        out = bytes.fromhex(body)
    except ValueError as exc:
        raise EncodingError(f"{what} is not valid hex: {text[:20]!r}") from exc
    if length is not None and len(out) != length:
        raise EncodingError(f"{what} must be {length} bytes, got {len(out)}")
    return out
