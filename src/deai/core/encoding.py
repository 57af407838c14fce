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

Bytes from another party are parsed with :func:`parse_json` only: it bounds size, nesting depth
and number length *before* the parser runs (a deeply nested document must never reach a recursive
parser; a huge integer literal costs quadratic time), refuses NaN and infinities, and raises
:class:`~deai.core.errors.EncodingError` for every fault, never anything else.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import rfc8785
from eth_hash.auto import keccak as _keccak

from deai.core.errors import EncodingError

__all__ = [
    "canonical",
    "decode_canonical",
    "from_hex",
    "hash_value",
    "keccak256",
    "parse_json",
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


_SAFE_INT = 2**53 - 1


class _NotPlain(Exception):
    """A value the fast path of :func:`canonical` leaves to ``rfc8785``."""


def _plain(value: Any) -> Any:
    """:func:`_normalize` for the usual message (ASCII keys, integers within +-(2**53 - 1), floats
    whose ECMAScript form is Python's, exact built-in types), whose RFC 8785 form is ``json.dumps``
    with sorted keys: the same string escapes, and ASCII keys sort the same by code point as by
    UTF-16 unit. Else :class:`_NotPlain`."""
    t = type(value)
    if t is str or t is bool or value is None:
        return value
    if t is int:
        if -_SAFE_INT <= value <= _SAFE_INT:
            return value
        raise _NotPlain
    if t is dict:
        out = {}
        for k, v in value.items():
            if type(k) is not str or not k.isascii():
                raise _NotPlain
            out[k] = _plain(v)
        return out
    if t is float:
        # ECMAScript's number form is Python's repr (the shortest round trip) for a non-integral
        # value in [1e-4, 1e16), and the integer's digits for an integral one
        if value.is_integer() and -_SAFE_INT <= value <= _SAFE_INT:
            return int(value)
        if 1e-4 <= abs(value) < 1e16 and not value.is_integer():
            return value
        raise _NotPlain
    if t is list or t is tuple:
        return [_plain(v) for v in value]
    if t is bytes or t is bytearray or t is memoryview:
        return to_hex(bytes(value))
    raise _NotPlain  # subclasses (str enums), numbers out of the ranges above, anything else


def canonical(value: Any) -> bytes:
    """Encode ``value`` (dicts, lists, str, int, float, bool, None, bytes) as RFC 8785 JSON bytes."""
    try:  # the fast path (C json), byte for byte rfc8785's output on the values it accepts
        return json.dumps(_plain(value), ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()
    except (_NotPlain, UnicodeEncodeError, RecursionError):
        pass  # rfc8785 gives the answer, or the error
    try:
        return rfc8785.dumps(_normalize(value))
    except EncodingError:
        raise
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise EncodingError(f"cannot canonicalize value: {exc}") from exc


T = TypeVar("T")

MAX_DEPTH = 64  # no message of ours nests deeper than ~10; the C stack takes thousands
MAX_DIGITS = 40  # a run of digits in a number: 2**128 has 39, a float's repr has at most 17
# A JSON string, escapes included; an unterminated one runs to the end. Possessive and always
# matching at a quote, so the scan is linear in the input (no retry from every later quote).
_STRING = re.compile(rb'"(?:[^"\\]++|\\[\s\S])*+(?:"|\\?\Z)')
_NOT_BRACKET = bytes(sorted(set(range(256)) - set(b"[]{}")))
_DIGITS = bytes(b"0"[0] if chr(i).isdigit() and i < 128 else b" "[0] for i in range(256))
_CHUNK = 1 << 20


def _depth_over(brackets: bytes, limit: int) -> bool:
    """Whether the running nesting depth of ``brackets`` (only ``[]{}``) ever exceeds ``limit``.

    Vectorized, in chunks so a deep prefix is refused without reading the rest."""
    if brackets.count(b"[") + brackets.count(b"{") <= limit:
        return False
    depth = 0
    for start in range(0, len(brackets), _CHUNK):
        chunk = np.frombuffer(brackets, np.uint8, count=min(_CHUNK, len(brackets) - start), offset=start)
        # "[" (0x5B) and "{" (0x7B) have bit 1 set, "]" (0x5D) and "}" (0x7D) do not.
        running = np.cumsum(((chunk >> 1) & 1).astype(np.int32) * 2 - 1) + depth
        if int(running.max()) > limit:
            return True
        depth = int(running[-1])
    return False


def _refuse_constant(name: str) -> Any:
    raise EncodingError(f"{name} is not a number JSON allows")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 parses to infinity
        raise EncodingError(f"number {text[:50]} is out of the float range")
    return value


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)


def parse_json(
    raw: bytes | bytearray | memoryview | str,
    *,
    max_bytes: int,
    max_depth: int = MAX_DEPTH,
    max_digits: int = MAX_DIGITS,
    what: str = "JSON",
) -> Any:
    """Parse JSON bytes from another party, refusing with :class:`EncodingError` (naming ``what``)
    anything over ``max_bytes``, not UTF-8, nested deeper than ``max_depth`` arrays/objects, with a
    run of more than ``max_digits`` digits in a number, holding NaN or an infinity, or not JSON.

    The depth and digit checks are a linear scan of the bytes outside strings that runs before
    :func:`json.loads`, so no input can exhaust the stack or spend quadratic time in ``int()``.
    """
    data = raw.encode() if isinstance(raw, str) else bytes(raw)
    if len(data) > max_bytes:
        raise EncodingError(f"{what} is {len(data)} bytes, over {max_bytes}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EncodingError(f"{what} is not JSON (not UTF-8): {exc}") from None
    # UTF-8 multi-byte sequences hold no ASCII bytes, so scanning bytes is scanning characters.
    # The checks first run on the whole input, strings included (cheap; they can only overcount):
    # only when one fails are the strings blanked out, so that text in them is not structure.
    run = b"0" * (max_digits + 1)  # digits map to "0", all else to " ": a substring search
    if _depth_over(data.translate(None, _NOT_BRACKET), max_depth) or run in data.translate(_DIGITS):
        outside = _STRING.sub(b'""', data)
        if _depth_over(outside.translate(None, _NOT_BRACKET), max_depth):
            raise EncodingError(f"{what} nests deeper than {max_depth} arrays/objects")
        if run in outside.translate(_DIGITS):
            raise EncodingError(f"{what} holds a number with more than {max_digits} digits")
    try:
        return _DECODER.decode(text)
    except EncodingError as exc:
        raise EncodingError(f"{what}: {exc}") from None
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise EncodingError(f"{what} is not JSON: {exc}") from None


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
    hashed object has exactly one byte form, so its hash is its identity. Parsing is
    :func:`parse_json`'s (bounded depth and numbers, finite)."""
    try:
        value = parse_json(data, max_bytes=max_bytes, what=what)
    except EncodingError as exc:
        raise error(str(exc)) from exc
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
