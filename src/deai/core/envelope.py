"""Signed envelopes: the only thing parties send each other.

An envelope is ``{type, body, sender, nonce, timestamp, network}`` plus a signature by ``sender``
over the canonical (RFC 8785) bytes of those six fields. A receiver runs :class:`EnvelopeVerifier`
on every envelope before looking at its body. Each way an envelope can be wrong raises its own
exception (see :mod:`deai.core.errors`):

==========================  ===================================================================
``MalformedEnvelope``       a field is missing, has the wrong type, or the wire bytes are too big
``BodyTooLarge``            the canonical body exceeds ``max_body_bytes``
``UnknownMessageType``      the type is not in the receiver's accepted set
``WrongNetwork``            the network id differs from the receiver's
``StaleTimestamp``          the timestamp is more than ``window_s`` in the past or ``future_s`` in the
                            future of the receiver's clock
``BadSignature``            the signature is not a valid secp256k1 signature
``SenderMismatch``          the signature is valid but by another key than ``sender``
``ReplayedNonce``           the ``(sender, nonce)`` pair was accepted before
==========================  ===================================================================

Time is passed in (``now_ms``) rather than read inside, so protocol code and tests can drive it.
"""

from __future__ import annotations

import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deai.core.accounts import Account, check_address, recover_signer
from deai.core.encoding import canonical, from_hex, parse_json, sha256_hex, to_hex
from deai.core.errors import (
    BodyTooLarge,
    EncodingError,
    MalformedEnvelope,
    ReplayedNonce,
    SenderMismatch,
    StaleTimestamp,
    UnknownMessageType,
    WrongNetwork,
)

__all__ = ["Envelope", "EnvelopeVerifier", "ReplayCache", "now_ms"]

MAX_NONCE = 2**53 - 1  # the interoperable JSON integer range
_FIELDS = ("type", "body", "sender", "nonce", "timestamp", "network", "signature")


def now_ms() -> int:
    """Wall-clock milliseconds since the epoch."""
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class Envelope:
    type: str
    body: dict[str, Any]
    sender: str
    nonce: int
    timestamp: int  # milliseconds since the epoch
    network: str
    signature: bytes

    # -- making ----------------------------------------------------------------------------

    @staticmethod
    def signing_bytes(type: str, body: dict, sender: str, nonce: int, timestamp: int, network: str) -> bytes:
        return canonical(
            {
                "type": type,
                "body": body,
                "sender": sender,
                "nonce": nonce,
                "timestamp": timestamp,
                "network": network,
            }
        )

    @classmethod
    def seal(
        cls,
        account: Account,
        type: str,
        body: dict[str, Any],
        network: str,
        *,
        nonce: int | None = None,
        timestamp: int | None = None,
    ) -> Envelope:
        """Sign ``body`` as a message of ``type`` from ``account`` for ``network``."""
        nonce = secrets.randbelow(MAX_NONCE) if nonce is None else nonce
        timestamp = now_ms() if timestamp is None else timestamp
        data = cls.signing_bytes(type, body, account.address, nonce, timestamp, network)
        return cls(type, body, account.address, nonce, timestamp, network, account.sign(data))

    # -- wire form -------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "body": self.body,
            "sender": self.sender,
            "nonce": self.nonce,
            "timestamp": self.timestamp,
            "network": self.network,
            "signature": to_hex(self.signature),
        }

    def to_bytes(self) -> bytes:
        return canonical(self.to_dict())

    @property
    def id(self) -> str:
        """SHA-256 of the envelope's wire bytes (0x-less hex)."""
        return sha256_hex(self.to_bytes())

    @classmethod
    def from_dict(cls, data: Any) -> Envelope:
        """Parse the wire form, checking every field's type (not the signature)."""
        if not isinstance(data, dict):
            raise MalformedEnvelope("envelope must be a JSON object")
        missing = [f for f in _FIELDS if f not in data]
        if missing:
            raise MalformedEnvelope(f"envelope is missing field(s): {', '.join(missing)}")
        extra = sorted(set(data) - set(_FIELDS))
        if extra:
            raise MalformedEnvelope(f"envelope has unknown field(s): {', '.join(extra)}")
        checks = {
            "type": str,
            "body": dict,
            "sender": str,
            "network": str,
            "signature": str,
        }
        for name, typ in checks.items():
            if not isinstance(data[name], typ):
                raise MalformedEnvelope(f"field {name!r} must be {typ.__name__}")
        for name in ("nonce", "timestamp"):
            value = data[name]
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_NONCE:
                raise MalformedEnvelope(f"field {name!r} must be an integer in [0, 2**53)")
        try:
            sender = check_address(data["sender"])
        except EncodingError as exc:
            raise MalformedEnvelope(f"field 'sender': {exc}") from exc
        try:
            signature = from_hex(data["signature"], length=65, what="signature")
        except EncodingError as exc:
            raise MalformedEnvelope(f"field 'signature': {exc}") from exc
        if data["signature"] != to_hex(signature):  # one wire form per envelope (its id)
            raise MalformedEnvelope("field 'signature' must be 0x + 130 lowercase hex digits")
        return cls(
            data["type"], data["body"], sender, data["nonce"], data["timestamp"], data["network"], signature
        )

    @classmethod
    def from_bytes(cls, raw: bytes, *, max_bytes: int = 16 * 1024 * 1024) -> Envelope:
        """Parse wire bytes from anyone: bounded in size, depth and numbers before parsing
        (:func:`~deai.core.encoding.parse_json`); every fault is a :class:`MalformedEnvelope`."""
        if len(raw) > max_bytes:
            raise MalformedEnvelope(f"envelope is {len(raw)} bytes, over the limit of {max_bytes}")
        try:
            data = parse_json(raw, max_bytes=max_bytes, what="envelope")
        except EncodingError as exc:
            raise MalformedEnvelope(f"envelope is not valid JSON: {exc}") from None
        return cls.from_dict(data)


class ReplayCache:
    """Remembers accepted ``(sender, nonce)`` pairs, persistently and within bounded space.

    Only pairs whose timestamp is inside the verifier's window need remembering (older envelopes
    are refused as stale anyway), so entries older than the window are pruned. If more than
    ``max_entries`` remain, the oldest are evicted and the *horizon* (the newest evicted
    timestamp) rises: envelopes at or below the horizon are refused as stale, so eviction can
    never re-open a replay. With ``path=None`` the cache lives in memory only.

    Only entries stamped at least ``keep_recent_ms`` (default 0) before the receiver's clock are
    evicted, so the horizon never rises past ``now - keep_recent_ms``: envelopes stamped in the
    future (by a skewed or hostile clock) cannot push it over honest envelopes stamped now. The
    cache may then briefly hold more than ``max_entries`` -- at most what arrives within the
    verifier's future skew (``future_s``), which the rate limits in front of it bound.
    """

    def __init__(
        self, path: str | Path | None = None, *, max_entries: int = 1_000_000, keep_recent_ms: int = 0
    ) -> None:
        self.max_entries = max_entries
        self.keep_recent_ms = keep_recent_ms
        self._lock = threading.Lock()
        target = ":memory:" if path is None else str(path)
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(target, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS seen (sender TEXT, nonce INTEGER, ts INTEGER,"
            " PRIMARY KEY (sender, nonce)) WITHOUT ROWID"
        )
        self._db.execute("CREATE INDEX IF NOT EXISTS seen_ts ON seen (ts)")
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER)")
        row = self._db.execute("SELECT v FROM meta WHERE k='horizon'").fetchone()
        self.horizon = row[0] if row else -1
        self._count = self._db.execute("SELECT COUNT(*) FROM seen").fetchone()[0]
        self._prune_at = 0  # when recent entries could not be evicted: the count to prune at next

    def __len__(self) -> int:
        return self._count

    def check_and_add(
        self, sender: str, nonce: int, timestamp: int, *, prune_before: int, now: int | None = None
    ) -> None:
        """Record the pair or raise ReplayedNonce / StaleTimestamp. Atomic. ``now`` (the receiver's
        clock; default: wall clock) bounds how far eviction may raise the horizon."""
        with self._lock:
            if timestamp <= self.horizon:
                raise StaleTimestamp(
                    f"timestamp {timestamp} is at or below the replay-cache horizon {self.horizon}"
                )
            try:
                self._db.execute("INSERT INTO seen VALUES (?, ?, ?)", (sender, nonce, timestamp))
            except sqlite3.IntegrityError:
                raise ReplayedNonce(f"nonce {nonce} from {sender} was already used") from None
            self._count += 1
            if self._count > max(self.max_entries, self._prune_at):
                self._prune(prune_before, (now_ms() if now is None else now) - self.keep_recent_ms)

    def _prune(self, prune_before: int, evict_below: int) -> None:
        db = self._db
        db.execute("BEGIN")
        db.execute("DELETE FROM seen WHERE ts < ?", (prune_before,))
        self._count = db.execute("SELECT COUNT(*) FROM seen").fetchone()[0]
        excess = self._count - self.max_entries // 2  # leave head-room so pruning is rare
        cut = None
        if excess > 0:
            # Evict only entries stamped before `evict_below`, so the horizon rises to the newest of
            # those and never over envelopes stamped now or later (future-stamped ones stay).
            row = db.execute(
                "SELECT ts FROM seen WHERE ts < ? ORDER BY ts LIMIT 1 OFFSET ?", (evict_below, excess - 1)
            ).fetchone()
            row = row or db.execute("SELECT MAX(ts) FROM seen WHERE ts < ?", (evict_below,)).fetchone()
            cut = row[0]
        if cut is not None and cut > self.horizon:
            db.execute("DELETE FROM seen WHERE ts <= ?", (cut,))
            self.horizon = max(self.horizon, cut)
            db.execute("INSERT OR REPLACE INTO meta VALUES ('horizon', ?)", (self.horizon,))
            self._count = db.execute("SELECT COUNT(*) FROM seen").fetchone()[0]
        # Still over (only recent entries left): wait for some growth instead of scanning per insert.
        self._prune_at = self._count + max(1, self.max_entries // 16) if self._count > self.max_entries else 0
        db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()


class EnvelopeVerifier:
    """Checks envelopes for one receiver. See the module docstring for what each check means."""

    def __init__(
        self,
        network: str,
        accepted_types: Iterable[str],
        *,
        replay_cache: ReplayCache | None = None,
        max_body_bytes: int = 1024 * 1024,
        window_s: float = 300.0,
        future_s: float = 30.0,
    ) -> None:
        self.network = network
        self.accepted_types = frozenset(accepted_types)
        self.replay_cache = replay_cache if replay_cache is not None else ReplayCache()
        self.max_body_bytes = max_body_bytes
        self.window_ms = int(window_s * 1000)
        # Separate from the past window: an honest sender stamps "now", so only clock skew puts it
        # in the future, while a long future reach would let an attacker pre-date the cache.
        self.future_ms = int(future_s * 1000)

    def verify(
        self,
        envelope: Envelope | dict | bytes,
        *,
        now: int | None = None,
        admit: Callable[[Envelope], None] | None = None,
    ) -> Envelope:
        """Return the envelope if every check passes, else raise the matching EnvelopeError.

        A verified envelope's nonce is recorded, so verifying it a second time raises
        ReplayedNonce. ``now`` is the receiver's clock in milliseconds (default: wall clock).
        ``admit`` (e.g. a rate limit) runs once the signature is checked and before the nonce is
        recorded: whatever it raises refuses the envelope, which may then be sent again unchanged.
        """
        if isinstance(envelope, bytes):
            envelope = Envelope.from_bytes(envelope, max_bytes=self.max_body_bytes + 4096)
        elif isinstance(envelope, dict):
            envelope = Envelope.from_dict(envelope)
        elif not isinstance(envelope, Envelope):
            raise MalformedEnvelope(f"expected an envelope, got {type(envelope).__name__}")
        now = now_ms() if now is None else now
        try:
            body_bytes = canonical(envelope.body)
        except EncodingError as exc:
            raise MalformedEnvelope(f"body cannot be canonicalized: {exc}") from exc
        if len(body_bytes) > self.max_body_bytes:
            raise BodyTooLarge(f"body is {len(body_bytes)} bytes, over the limit of {self.max_body_bytes}")
        if envelope.type not in self.accepted_types:
            raise UnknownMessageType(f"message type {envelope.type!r} is not accepted here")
        if envelope.network != self.network:
            raise WrongNetwork(f"envelope is for network {envelope.network!r}, this is {self.network!r}")
        if not -self.window_ms <= envelope.timestamp - now <= self.future_ms:
            raise StaleTimestamp(
                f"timestamp {envelope.timestamp} is {(envelope.timestamp - now) / 1000:+.1f}s from now,"
                f" outside the window of -{self.window_ms / 1000:.0f}s to +{self.future_ms / 1000:.0f}s"
            )
        data = Envelope.signing_bytes(
            envelope.type,
            envelope.body,
            envelope.sender,
            envelope.nonce,
            envelope.timestamp,
            envelope.network,
        )
        signer = recover_signer(data, envelope.signature)  # raises BadSignature
        if signer != envelope.sender:
            raise SenderMismatch(f"signed by {signer}, but the sender field says {envelope.sender}")
        if admit is not None:
            admit(envelope)
        self.replay_cache.check_and_add(
            envelope.sender, envelope.nonce, envelope.timestamp, prune_before=now - self.window_ms, now=now
        )
        return envelope
