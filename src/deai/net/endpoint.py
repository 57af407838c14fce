"""The server side of every transport: verify, dispatch, answer.

An :class:`Endpoint` owns an :class:`~deai.core.envelope.EnvelopeVerifier`, a blob store and a
table of handlers by message type. Both transports call :meth:`Endpoint.dispatch` with the raw
bytes they received and :meth:`Endpoint.begin_upload` for blobs, so an in-memory simulation and an
HTTP network refuse exactly the same inputs with exactly the same reasons.

Status codes follow HTTP:

=====  ==================================================================================
400    malformed envelope, wrong network, stale timestamp, or a handler's ``ServiceError``
401    bad signature or sender mismatch; an upload without a signed ``blob.put`` envelope
403    an upload by an identity with no upload quota, or one over its quota
404    unknown message type or blob
409    replayed nonce (an *identical* envelope sent again gets its first answer back instead,
       so clients can retry safely; an identical read is answered again)
408    an upload's (or an envelope's) body did not arrive in time (see :class:`UploadPolicy`)
413    body or blob over the size limit, or over the size its ``blob.put`` declared
422    a blob whose bytes do not hash to the digest it was uploaded under
429    over the sender's (or, unsigned, the client address's) request rate; the body's
       ``retry_after`` (seconds) says when to try again
500    a handler failed unexpectedly (the endpoint keeps serving; nothing is committed)
503    too many uploads at once (try again shortly)
=====  ==================================================================================

Resources a sender can make the endpoint hold are bounded: the answers kept for retries (only
of state-changing types, by count and by bytes), the request rate (a token bucket per verified
sender, checked before the handler runs), and uploads (each needs a signed ``blob.put`` envelope
``{digest, size}`` from an identity with upload quota; unreferenced uploads count against that
quota and are collected after a TTL, see :class:`UploadPolicy`).
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from deai.core.blobs import BlobStore, BlobWriter, check_digest
from deai.core.envelope import Envelope, EnvelopeVerifier, ReplayCache, now_ms
from deai.core.errors import (
    BadSignature,
    BlobCorrupted,
    BlobNotFound,
    BlobTooLarge,
    BodyTooLarge,
    DeaiError,
    EncodingError,
    EnvelopeError,
    ReplayedNonce,
    SenderMismatch,
    UnknownMessageType,
)
from deai.core.logs import Throttle, event
from deai.net.limits import RateLimits, TokenBuckets

__all__ = [
    "BLOB_PUT",
    "Endpoint",
    "Handler",
    "RateLimited",
    "Reply",
    "ServiceError",
    "Upload",
    "UploadPolicy",
]

log = logging.getLogger(__name__)
_REFUSALS = Throttle(1.0)  # refusal lines: at most one per error kind a second (anyone can cause them)

Handler = Callable[[Envelope], dict[str, Any]]
BLOB_PUT = "blob.put"  # the envelope type that authorizes one upload: body {"digest", "size"}
MAX_AUTH_BYTES = 4096  # a blob.put envelope is ~450 bytes


class ServiceError(DeaiError):
    """Raised by a handler to refuse a request; ``status`` is the HTTP-style status code."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class RateLimited(ServiceError):
    """Over the request rate; ``retry_after`` is how many seconds until one more is admitted."""

    def __init__(self, reason: str, retry_after: float) -> None:
        super().__init__(reason, 429)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Reply:
    status: int
    body: dict[str, Any]

    @property
    def ok(self) -> bool:
        return self.status < 400


def _refusal(exc: Exception) -> Reply:
    if isinstance(exc, BadSignature | SenderMismatch):
        status = 401
    elif isinstance(exc, UnknownMessageType | BlobNotFound):
        status = 404
    elif isinstance(exc, ReplayedNonce):
        status = 409
    elif isinstance(exc, BodyTooLarge | BlobTooLarge):
        status = 413
    elif isinstance(exc, BlobCorrupted):
        status = 422
    elif isinstance(exc, ServiceError):
        status = exc.status
    else:
        status = 400
    body: dict[str, Any] = {"error": type(exc).__name__, "reason": str(exc)}
    if isinstance(exc, RateLimited):
        body["retry_after"] = max(0.001, round(exc.retry_after, 3))  # a refusal never says "now"
    return Reply(status, body)


@dataclass
class EndpointStats:
    requests: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    bytes_in: int = 0
    bytes_out: int = 0


@dataclass(frozen=True)
class UploadPolicy:
    """Who may upload blobs, how much, how fast, and how long unreferenced uploads stay.

    ``quota_of(address)`` is how many bytes that identity may keep stored but unreferenced (0: it
    may not upload at all); the owner of the endpoint decides (a hub: its own account unlimited,
    anyone with stake or balance a fixed quota, nobody else). An upload is charged to its
    uploader until the owner pins the digest (something refers to it); an unpinned upload older
    than ``ttl_s`` is deleted by :meth:`Endpoint.collect` (run at most every ``gc_interval_s``)
    and credited back. At most ``max_concurrent`` uploads run at once (more get 503), and each
    body must keep pace: its first n bytes within ``base_timeout_s + n / min_rate`` seconds.
    """

    quota_of: Callable[[str], int]
    ttl_s: float = 3600.0
    gc_interval_s: float = 60.0
    max_concurrent: int = 16
    min_rate: int = 256 << 10
    base_timeout_s: float = 10.0


class Upload:
    """One authorized upload in progress: :meth:`write` chunks, then :meth:`finish` (or :meth:`abort`).

    Made by :meth:`Endpoint.begin_upload`; holds a slot of the upload limit and a reservation of
    the uploader's quota until it ends. Use as a context manager (leaving it aborts if unfinished).
    """

    def __init__(self, endpoint: Endpoint, uploader: str, digest: str, size: int) -> None:
        self.endpoint, self.uploader, self.digest, self.declared = endpoint, uploader, digest, size
        self.received = 0
        self._writer: BlobWriter | None = endpoint.blobs.writer(expected=digest, limit=size, uploaded=True)

    def write(self, chunk: bytes) -> None:
        """Store a piece (raises BlobTooLarge past the declared size)."""
        self.received += len(chunk)
        assert self._writer is not None, "the upload has ended"
        self._writer.write(chunk)

    def finish(self) -> Reply:
        """Check the digest, move the blob into place and charge it to the uploader if it is new."""
        assert self._writer is not None, "the upload has ended"
        store = self.endpoint.blobs
        existed = self.digest in store
        try:
            stored = self._writer.finish()
            if not existed:
                store.uploads.record(stored, self.uploader, self.received, self.endpoint.clock())
        except (DeaiError, EncodingError) as exc:
            return self.endpoint._refuse(exc)
        finally:
            self.abort()
        return Reply(200, {"digest": stored, "size": self.received})

    def abort(self) -> None:
        """Discard what was written (if unfinished) and release the slot and the reservation."""
        if self._writer is None:
            return
        self._writer.abort()
        self._writer = None
        self.endpoint.stats.bytes_in += self.received
        self.endpoint._end_upload(self)

    def __enter__(self) -> Upload:
        return self

    def __exit__(self, *exc: object) -> None:
        self.abort()


_REREAD = Reply(0, {})  # marks an answered read: an identical retry is answered again, not kept


class Endpoint:
    """Verifies and dispatches envelopes to handlers; stores and serves blobs.

    Handlers run one at a time (a lock serializes them), so a handler may change node state
    without its own locking -- except those routed with ``exclusive=False`` (long polls). Time
    comes from ``clock`` (milliseconds) so tests can drive it.

    The answers of state-changing requests are kept (at most ``answer_cache_size`` of them and
    ``answer_cache_bytes`` in all, none over a sixteenth of that) so an identical retry gets the
    first answer; answers of types routed ``read_only=True`` are not kept (a retry reads again).
    ``limits`` (None: no rate limit) bounds the request rate per sender and per client address.
    ``uploads`` (None: the endpoint takes no uploads) says who may upload and how much.
    """

    def __init__(
        self,
        network: str,
        handlers: dict[str, Handler],
        blobs: BlobStore,
        *,
        replay_cache: ReplayCache | None = None,
        max_body_bytes: int = 1 << 20,
        window_s: float = 300.0,
        clock: Callable[[], int] = now_ms,
        answer_cache_size: int = 10_000,
        answer_cache_bytes: int = 32 << 20,
        limits: RateLimits | None = None,
        uploads: UploadPolicy | None = None,
    ) -> None:
        self.network = network
        self.handlers = dict(handlers)
        self.blobs = blobs
        self.verifier = EnvelopeVerifier(
            network,
            [*self.handlers, BLOB_PUT],
            replay_cache=replay_cache,
            max_body_bytes=max_body_bytes,
            window_s=window_s,
        )
        self.clock = clock
        self.stats = EndpointStats()
        self._lock = threading.Lock()
        self._shared: set[str] = set()  # message types whose handlers run outside the lock
        self._read_only: set[str] = set()  # message types whose answers are not kept
        self._answers: OrderedDict[str, tuple[Reply, int]] = OrderedDict()
        self._answer_cache_size = answer_cache_size
        self._answer_cache_bytes = answer_cache_bytes
        self.answer_bytes = 0  # the bytes of the answers kept (their JSON encoding)
        self.limits = limits
        self._senders = self._peers = self._unfunded = self._refused = None
        if limits is not None:
            keys = limits.max_keys
            self._senders = TokenBuckets(limits.sender_rate, limits.sender_burst, max_keys=keys)
            self._peers = TokenBuckets(limits.peer_rate, limits.peer_burst, max_keys=keys)
            self._unfunded = TokenBuckets(limits.unfunded_rate, limits.unfunded_burst, max_keys=1)
            self._refused = TokenBuckets(limits.refused_rate, limits.refused_burst, max_keys=keys)
        self.uploads = uploads
        self._upload_lock = threading.Lock()
        self._active_uploads = 0
        self._reserved: dict[str, int] = {}  # uploader -> bytes of its uploads in progress
        self._last_collect: int | None = None
        self._failures: dict[str, float] = {}  # handler type:exception -> when last logged
        if uploads is not None:
            blobs.uploads  # noqa: B018 - open the upload index now: the store's own writes get pinned

    def route(
        self, type: str, *, exclusive: bool = True, read_only: bool = False
    ) -> Callable[[Handler], Handler]:
        """Decorator: register ``fn`` as the handler of message ``type``.

        ``exclusive=False`` runs the handler outside the endpoint's lock (the envelope is still
        verified under it): for handlers that block, e.g. a long poll waiting for a change, which
        must not hold back every other request. Such a handler does its own locking.
        ``read_only=True`` says the handler changes nothing: its answers are not kept for retries
        (they may be large, and reading again is as good).
        """
        if type == BLOB_PUT:
            raise ValueError(f"{BLOB_PUT!r} is reserved for upload authorizations")

        def register(fn: Handler) -> Handler:
            self.handlers[type] = fn
            (self._shared.discard if exclusive else self._shared.add)(type)
            (self._read_only.add if read_only else self._read_only.discard)(type)
            self.verifier.accepted_types = frozenset([*self.handlers, BLOB_PUT])
            return fn

        return register

    def _refuse(self, exc: Exception, peer: str | None = None) -> Reply:
        """The refusal of ``exc``; one sent by ``peer`` before its sender was verified is charged
        to the peer's bucket of refused envelopes (a rate refusal is not)."""
        name = type(exc).__name__
        self.stats.refused[name] = self.stats.refused.get(name, 0) + 1
        if log.isEnabledFor(logging.INFO) and (allowed := _REFUSALS.allow(name))[0]:
            event(log, "refused", error=name, reason=str(exc)[:200], peer=peer, held_back=allowed[1])
        if peer is not None and self._refused is not None and not isinstance(exc, RateLimited):
            self._refused.take(peer)
        return _refusal(exc)

    # -- rate limits -----------------------------------------------------------------------------

    def _admit(self, env: Envelope) -> None:
        """The verified sender's token bucket (run by the verifier after the signature check)."""
        if self._senders is not None and (wait := self._senders.take(env.sender)) > 0:
            raise RateLimited(f"{env.sender} is over {self._senders.rate:g} requests/s", wait)
        shared = self._unfunded
        if shared is not None and self.uploads is not None and self.uploads.quota_of(env.sender) <= 0:
            wait = shared.take("")  # one bucket for every key that holds nothing
            if wait > 0:
                raise RateLimited(f"senders without stake or balance are over {shared.rate:g}/s", wait)

    def admit_peer(self, peer: str | None) -> None:
        """Raise RateLimited if the client address ``peer`` is over its rate (unsigned requests)."""
        if self._peers is not None and (wait := self._peers.take(peer or "?")) > 0:
            raise RateLimited(f"{peer} is over {self._peers.rate:g} unsigned requests/s", wait)

    # -- envelopes -------------------------------------------------------------------------------

    def dispatch(self, raw: bytes, *, peer: str | None = None) -> Reply:
        """Verify ``raw`` envelope bytes and run the handler of their type. ``peer`` (the client
        address, over HTTP) is charged for envelopes refused before their sender is verified."""
        self.stats.requests += 1
        self.stats.bytes_in += len(raw)
        if self._refused is not None and peer is not None and (wait := self._refused.take(peer, spend=False)):
            return self._refuse(RateLimited(f"{peer} sent too many refused envelopes", wait))
        with self._lock:
            try:
                env = Envelope.from_bytes(raw, max_bytes=self.verifier.max_body_bytes + 4096)
                if env.type == BLOB_PUT:
                    raise ServiceError(f"a {BLOB_PUT} envelope authorizes an upload: PUT /v1/blobs/<digest>")
                self.verifier.verify(env, now=self.clock(), admit=self._admit)
            except ReplayedNonce as exc:
                kept = self._answers.get(env.id)
                if kept is None:
                    return self._refuse(exc, peer)
                if kept[0] is not _REREAD:
                    return kept[0]
                # an identical retry of a read: answered again below, like the first time
            except (EnvelopeError, ServiceError) as exc:
                return self._refuse(exc, peer)
            if env.type not in self._shared:
                return self._remember(env, self._handle(env))
        reply = self._handle(env)  # verified and recorded as seen; the handler runs unlocked
        with self._lock:
            return self._remember(env, reply)

    def _handle(self, env: Envelope) -> Reply:
        try:
            body = self.handlers[env.type](env)
            level = logging.DEBUG if env.type in self._read_only else logging.INFO  # reads: debug
            event(log, "accepted", level, type=env.type, sender=env.sender)
            return Reply(200, body if body is not None else {})
        except (DeaiError, EncodingError) as exc:
            return self._refuse(exc)
        except Exception as exc:  # a handler bug must not take the node down
            key, now = f"{env.type}:{type(exc).__name__}", time.monotonic()
            if now - self._failures.get(key, -math.inf) >= 60:  # a traceback per kind per minute:
                self._failures[key] = now  # whoever found the bug could otherwise fill the log
                log.exception("handler for %s failed (logged once a minute)", env.type)
            return self._refuse(ServiceError(f"internal error in {env.type}: {type(exc).__name__}", 500))

    def _remember(self, env: Envelope, reply: Reply) -> Reply:
        """Keep the answer so that an identical envelope sent again (a retry) gets it back.

        Reads keep only a marker (a retry reads again); other answers are kept within the count
        and byte bounds, oldest dropped first; one too large to keep is not kept (a retry of it is
        refused as a replay, and the client re-seals it: every state change is idempotent)."""
        if env.id in self._answers:
            return reply
        if env.type in self._read_only:
            kept, size = _REREAD, 0
        else:
            size = len(json.dumps(reply.body, separators=(",", ":"), default=str))
            if size > self._answer_cache_bytes // 16:
                return reply
            kept = reply
        self._answers[env.id] = (kept, size)
        self.answer_bytes += size
        while len(self._answers) > self._answer_cache_size or self.answer_bytes > self._answer_cache_bytes:
            _, (_, dropped) = self._answers.popitem(last=False)
            self.answer_bytes -= dropped
        return reply

    # -- blobs ---------------------------------------------------------------------------------

    def begin_upload(self, digest: str, auth: bytes | None, declared: int | None = None) -> Upload:
        """Authorize an upload of ``digest``: ``auth`` is the wire form of a ``blob.put`` envelope
        ``{"digest", "size"}`` signed by the uploader; ``declared`` the transport's announced length.

        Raises (a DeaiError, see :func:`_refusal` for the status): no or a bad envelope, another
        digest, a declared length over the signed size or the store's limit, a sender over its
        rate, without upload quota (403) or over it (403), and too many uploads at once (503).
        """
        digest = check_digest(digest)
        policy = self.uploads
        if policy is None:
            raise ServiceError("this endpoint takes no uploads", 403)
        if auth is None:
            raise ServiceError(f"an upload needs a signed {BLOB_PUT} envelope (X-Deai-Envelope)", 401)
        env = Envelope.from_bytes(auth, max_bytes=MAX_AUTH_BYTES)
        if env.type != BLOB_PUT:
            raise ServiceError(f"an upload is authorized by a {BLOB_PUT} envelope, not {env.type!r}")
        body = env.body
        size, limit = body.get("size"), self.blobs.max_bytes
        if set(body) != {"digest", "size"} or not isinstance(body["digest"], str):
            raise ServiceError(f"a {BLOB_PUT} body is {{digest, size}}")
        if check_digest(body["digest"]) != digest:
            raise ServiceError(f"the {BLOB_PUT} envelope authorizes {body['digest']}, not {digest}")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ServiceError(f"a {BLOB_PUT} size must be a non-negative integer, got {size!r}")
        if limit is not None and size > limit:
            raise BlobTooLarge(f"upload is {size} bytes, over the limit of {limit}")
        if declared is not None and declared > size:
            raise BlobTooLarge(f"the body is {declared} bytes, over the {size} its {BLOB_PUT} declares")
        with self._lock:
            self.verifier.verify(env, now=self.clock(), admit=self._admit)
        quota = policy.quota_of(env.sender)
        with self._upload_lock:
            if quota <= 0:
                raise ServiceError(f"{env.sender} may not upload (no stake or balance here)", 403)
            used = self.blobs.uploads.used(env.sender) + self._reserved.get(env.sender, 0)
            if used + size > quota:
                reason = (
                    f"{env.sender} keeps {used} unreferenced bytes; {size} more is over its quota of {quota}"
                )
                raise ServiceError(reason, 403)
            if self._active_uploads >= policy.max_concurrent:
                raise ServiceError(f"{policy.max_concurrent} uploads are running; try again shortly", 503)
            self._active_uploads += 1
            self._reserved[env.sender] = self._reserved.get(env.sender, 0) + size
        try:
            return Upload(self, env.sender, digest, size)
        except BaseException:
            self._release(env.sender, size)
            raise

    def _end_upload(self, upload: Upload) -> None:
        self._release(upload.uploader, upload.declared)

    def _release(self, uploader: str, size: int) -> None:
        with self._upload_lock:
            self._active_uploads -= 1
            left = self._reserved.get(uploader, 0) - size
            if left > 0:
                self._reserved[uploader] = left
            else:
                self._reserved.pop(uploader, None)

    def put_blob(self, chunks: Iterable[bytes], digest: str, auth: bytes | None) -> Reply:
        """A whole upload from an iterable (the in-memory transport): :meth:`begin_upload`, write, finish."""
        try:
            with self.begin_upload(digest, auth) as upload:
                for chunk in chunks:
                    upload.write(chunk)
                return upload.finish()
        except (DeaiError, EncodingError) as exc:
            return self._refuse(exc)

    def collect(self, *, force: bool = False) -> list[str]:
        """Delete unreferenced uploads older than the TTL (at most every ``gc_interval_s`` unless
        ``force``); returns the digests deleted. The owner calls it from its loop."""
        if self.uploads is None:
            return []
        now = self.clock()
        due = self._last_collect is None or now - self._last_collect >= self.uploads.gc_interval_s * 1000
        if not (force or due):
            return []
        self._last_collect = now
        gone = self.blobs.uploads.collect(now, math.ceil(self.uploads.ttl_s * 1000))
        if gone:
            log.info("collected %d unreferenced uploads", len(gone))
        return gone

    def open_blob(self, digest: str) -> Iterable[bytes]:
        """Chunks of a stored blob, verified while streaming (raises BlobNotFound first)."""
        size = self.blobs.size(digest)
        self.stats.bytes_out += size
        return self.blobs.get_stream(digest)
