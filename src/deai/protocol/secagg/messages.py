"""The messages of a round and their binary wire form.

Client -> server: :class:`AdvertiseKeys`, :class:`ShareKeys`, :class:`MaskedInput`,
:class:`ConsistencySignature`, :class:`UnmaskShares`. Server -> client: :class:`KeysBroadcast`,
:class:`SharesDelivery`, :class:`ConsistencyRequest`, :class:`UnmaskRequest`.

Wire form: ``b"DSA1" | type u8 | round_id 32 B | party u32 | body``, big-endian, fixed-size fields
(the masked vector is little-endian ring elements). ``party`` is the sender of a client message and
the recipient of a server message. :func:`decode` checks every length against the round's config,
so a vector or share of the wrong size is refused before any state changes; :func:`wire_size` is
what the benchmark counts as bandwidth.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from deai.protocol.secagg.config import SecAggConfig
from deai.protocol.secagg.crypto import KEY_BYTES
from deai.protocol.secagg.errors import MalformedMessage
from deai.protocol.secagg.shamir import SHARE_BYTES

__all__ = [
    "CIPHERTEXT_BYTES",
    "SIGNATURE_BYTES",
    "AdvertiseKeys",
    "ConsistencyRequest",
    "ConsistencySignature",
    "KeysBroadcast",
    "MaskedInput",
    "Message",
    "ShareKeys",
    "SharesDelivery",
    "UnmaskRequest",
    "UnmaskShares",
    "decode",
    "encode",
    "wire_size",
]

SIGNATURE_BYTES = 65
PLAINTEXT_BYTES = 4 + 4 + 2 * SHARE_BYTES  # owner, holder, self-mask seed share, mask-key share
CIPHERTEXT_BYTES = PLAINTEXT_BYTES + 16  # AES-GCM tag
HASH_BYTES = 32
_MAGIC = b"DSA1"
_HEADER = struct.Struct(">4sB32sI")
KIND_SELF_MASK, KIND_MASK_KEY = 0, 1


@dataclass(frozen=True)
class Message:
    TYPE: ClassVar[int] = 0
    party: int


@dataclass(frozen=True)
class AdvertiseKeys(Message):
    """Phase 1: the provider's two fresh X25519 public keys, signed by its account."""

    TYPE: ClassVar[int] = 1
    enc_key: bytes  # for encrypting shares
    mask_key: bytes  # for pairwise masks
    signature: bytes


@dataclass(frozen=True)
class ShareKeys(Message):
    """Phase 2: shares of the self-mask seed and of the mask private key, encrypted per holder, with
    per-share commitments (so a holder cannot reveal a forged share) and a commitment to the seed."""

    TYPE: ClassVar[int] = 2
    entries: tuple[tuple[int, bytes, bytes, bytes], ...]  # (holder, ciphertext, commit_b, commit_s)
    seed_commitment: bytes


@dataclass(frozen=True)
class MaskedInput(Message):
    """Phase 3: the quantized update plus self mask plus pairwise masks, in the ring."""

    TYPE: ClassVar[int] = 3
    vector: np.ndarray


@dataclass(frozen=True)
class ConsistencySignature(Message):
    """Phase 4: the provider's signature over the survivor set the server announced."""

    TYPE: ClassVar[int] = 4
    signature: bytes


@dataclass(frozen=True)
class UnmaskShares(Message):
    """Phase 5: for each neighbour, the self-mask share (survivor) or mask-key share (dropped)."""

    TYPE: ClassVar[int] = 5
    entries: tuple[tuple[int, int, bytes], ...]  # (owner, kind, share)


@dataclass(frozen=True)
class KeysBroadcast(Message):
    TYPE: ClassVar[int] = 11
    keys: tuple[tuple[int, bytes, bytes, bytes], ...]  # (provider, enc_key, mask_key, signature)


@dataclass(frozen=True)
class SharesDelivery(Message):
    TYPE: ClassVar[int] = 12
    ciphertexts: tuple[tuple[int, bytes], ...]  # (dealer, ciphertext)


@dataclass(frozen=True)
class ConsistencyRequest(Message):
    TYPE: ClassVar[int] = 13
    survivors: tuple[int, ...]


@dataclass(frozen=True)
class UnmaskRequest(Message):
    """Reveal self-mask shares of ``survivors`` and mask-key shares of ``dropped``; carries the
    survivors' signatures over the survivor set."""

    TYPE: ClassVar[int] = 14
    survivors: tuple[int, ...]
    dropped: tuple[int, ...]
    signatures: tuple[tuple[int, bytes], ...]


# ------------------------------------------------------------------------------------------------


def _ints(xs) -> bytes:
    return struct.pack(f">I{len(xs)}I", len(xs), *xs)


def _body(msg: Message) -> bytes:
    if isinstance(msg, AdvertiseKeys):
        return msg.enc_key + msg.mask_key + msg.signature
    if isinstance(msg, ShareKeys):
        parts = [struct.pack(">I", len(msg.entries))]
        parts += [struct.pack(">I", h) + c + b + s for h, c, b, s in msg.entries]
        return b"".join([*parts, msg.seed_commitment])
    if isinstance(msg, MaskedInput):
        return msg.vector.astype(msg.vector.dtype.newbyteorder("<"), copy=False).tobytes()
    if isinstance(msg, ConsistencySignature):
        return msg.signature
    if isinstance(msg, UnmaskShares):
        parts = [struct.pack(">I", len(msg.entries))]
        return b"".join(parts + [struct.pack(">IB", o, k) + s for o, k, s in msg.entries])
    if isinstance(msg, KeysBroadcast):
        parts = [struct.pack(">I", len(msg.keys))]
        return b"".join(parts + [struct.pack(">I", p) + e + m + s for p, e, m, s in msg.keys])
    if isinstance(msg, SharesDelivery):
        parts = [struct.pack(">I", len(msg.ciphertexts))]
        return b"".join(parts + [struct.pack(">I", d) + c for d, c in msg.ciphertexts])
    if isinstance(msg, ConsistencyRequest):
        return _ints(msg.survivors)
    if isinstance(msg, UnmaskRequest):
        sigs = b"".join(struct.pack(">I", p) + s for p, s in msg.signatures)
        return _ints(msg.survivors) + _ints(msg.dropped) + struct.pack(">I", len(msg.signatures)) + sigs
    raise TypeError(f"not a secagg message: {type(msg).__name__}")


def encode(msg: Message, config: SecAggConfig) -> bytes:
    return _HEADER.pack(_MAGIC, msg.TYPE, config.round_id, msg.party) + _body(msg)


def wire_size(msg: Message, config: SecAggConfig) -> int:
    if isinstance(msg, MaskedInput):  # avoid copying a large vector just to count it
        return _HEADER.size + msg.vector.size * msg.vector.itemsize
    return len(encode(msg, config))


class _Reader:
    def __init__(self, data: bytes, what: str) -> None:
        self.data, self.pos, self.what = memoryview(data), 0, what

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise MalformedMessage(f"{self.what} is truncated")
        out = bytes(self.data[self.pos : self.pos + n])
        self.pos += n
        return out

    def u32(self) -> int:
        return struct.unpack(">I", self.take(4))[0]

    def count(self, item_bytes: int, limit: int) -> int:
        k = self.u32()
        if k > limit or k * item_bytes > len(self.data) - self.pos:
            raise MalformedMessage(f"{self.what} announces {k} entries, more than it can hold")
        return k

    def done(self) -> None:
        if self.pos != len(self.data):
            raise MalformedMessage(f"{self.what} has {len(self.data) - self.pos} trailing bytes")


_TYPES: dict[int, type[Message]] = {
    c.TYPE: c
    for c in (
        *(AdvertiseKeys, ShareKeys, MaskedInput, ConsistencySignature, UnmaskShares),
        *(KeysBroadcast, SharesDelivery, ConsistencyRequest, UnmaskRequest),
    )
}


def decode(data: bytes, config: SecAggConfig) -> Message:
    """Parse and size-check a message of this round; raises :class:`MalformedMessage`."""
    if len(data) < _HEADER.size:
        raise MalformedMessage("message shorter than its header")
    magic, mtype, round_id, party = _HEADER.unpack_from(data)
    if magic != _MAGIC or mtype not in _TYPES:
        raise MalformedMessage(f"not a secagg message (magic {magic!r}, type {mtype})")
    if round_id != config.round_id:
        raise MalformedMessage("message belongs to another round")
    if party >= config.n:
        raise MalformedMessage(f"party index {party} outside the roster of {config.n}")
    cls = _TYPES[mtype]
    r = _Reader(data[_HEADER.size :], cls.__name__)
    n = config.n
    msg: Message
    if cls is AdvertiseKeys:
        msg = AdvertiseKeys(party, r.take(KEY_BYTES), r.take(KEY_BYTES), r.take(SIGNATURE_BYTES))
    elif cls is ShareKeys:
        k = r.count(4 + CIPHERTEXT_BYTES + 2 * HASH_BYTES, n)
        entries = tuple(
            (r.u32(), r.take(CIPHERTEXT_BYTES), r.take(HASH_BYTES), r.take(HASH_BYTES)) for _ in range(k)
        )
        msg = ShareKeys(party, entries, r.take(HASH_BYTES))
    elif cls is MaskedInput:
        raw = r.take(len(data) - _HEADER.size)
        if len(raw) != config.masked_bytes:
            raise MalformedMessage(f"masked vector is {len(raw)} bytes, expected {config.masked_bytes}")
        vec = np.frombuffer(raw, dtype=np.dtype(config.ring.dtype).newbyteorder("<"))
        msg = MaskedInput(party, vec.astype(config.ring.dtype))
    elif cls is ConsistencySignature:
        msg = ConsistencySignature(party, r.take(SIGNATURE_BYTES))
    elif cls is UnmaskShares:
        k = r.count(5 + SHARE_BYTES, 2 * n)
        msg = UnmaskShares(party, tuple((r.u32(), r.take(1)[0], r.take(SHARE_BYTES)) for _ in range(k)))
    elif cls is KeysBroadcast:
        k = r.count(4 + 2 * KEY_BYTES + SIGNATURE_BYTES, n)
        keys = tuple(
            (r.u32(), r.take(KEY_BYTES), r.take(KEY_BYTES), r.take(SIGNATURE_BYTES)) for _ in range(k)
        )
        msg = KeysBroadcast(party, keys)
    elif cls is SharesDelivery:
        k = r.count(4 + CIPHERTEXT_BYTES, n)
        msg = SharesDelivery(party, tuple((r.u32(), r.take(CIPHERTEXT_BYTES)) for _ in range(k)))
    elif cls is ConsistencyRequest:
        msg = ConsistencyRequest(party, tuple(r.u32() for _ in range(r.count(4, n))))
    else:
        survivors = tuple(r.u32() for _ in range(r.count(4, n)))
        dropped = tuple(r.u32() for _ in range(r.count(4, n)))
        sigs = tuple((r.u32(), r.take(SIGNATURE_BYTES)) for _ in range(r.count(4 + SIGNATURE_BYTES, n)))
        msg = UnmaskRequest(party, survivors, dropped, sigs)
    r.done()
    return msg
