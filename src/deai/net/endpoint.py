"""The server side of every transport: verify, dispatch, answer.

An :class:`Endpoint` owns an :class:`~deai.core.envelope.EnvelopeVerifier`, a blob store and a
table of handlers by message type. Both transports call :meth:`Endpoint.dispatch` with the raw
bytes they received, so an in-memory simulation and an HTTP network refuse exactly the same
inputs with exactly the same reasons.

Status codes follow HTTP:

=====  ==================================================================================
400    malformed envelope, wrong network, stale timestamp, or a handler's ``ServiceError``
401    bad signature or sender mismatch
404    unknown message type or blob
409    replayed nonce (an *identical* envelope sent again gets its first answer back instead,
       so clients can retry safely)
413    body or blob over the size limit
422    a blob whose bytes do not hash to the digest it was uploaded under
500    a handler failed unexpectedly (the endpoint keeps serving; nothing is committed)
=====  ==================================================================================
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from deai.core.blobs import BlobStore
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

__all__ = ["Endpoint", "Handler", "Reply", "ServiceError"]

log = logging.getLogger(__name__)

Handler = Callable[[Envelope], dict[str, Any]]


class ServiceError(DeaiError):
    """Raised by a handler to refuse a request; ``status`` is the HTTP-style status code."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


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
    return Reply(status, {"error": type(exc).__name__, "reason": str(exc)})


@dataclass
class EndpointStats:
    requests: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    bytes_in: int = 0
    bytes_out: int = 0


class Endpoint:
    """Verifies and dispatches envelopes to handlers; stores and serves blobs.

    Handlers run one at a time (a lock serializes them), so a handler may change node state
    without its own locking -- except those routed with ``exclusive=False`` (long polls). Time
    comes from ``clock`` (milliseconds) so tests can drive it.
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
    ) -> None:
        self.network = network
        self.handlers = dict(handlers)
        self.blobs = blobs
        self.verifier = EnvelopeVerifier(
            network,
            self.handlers,
            replay_cache=replay_cache,
            max_body_bytes=max_body_bytes,
            window_s=window_s,
        )
        self.clock = clock
        self.stats = EndpointStats()
        self._lock = threading.Lock()
        self._shared: set[str] = set()  # message types whose handlers run outside the lock
        self._answers: OrderedDict[str, Reply] = OrderedDict()
        self._answer_cache_size = answer_cache_size

    def route(self, type: str, *, exclusive: bool = True) -> Callable[[Handler], Handler]:
        """Decorator: register ``fn`` as the handler of message ``type``.

        ``exclusive=False`` runs the handler outside the endpoint's lock (the envelope is still
        verified under it): for handlers that block, e.g. a long poll waiting for a change, which
        must not hold back every other request. Such a handler does its own locking.
        """

        def register(fn: Handler) -> Handler:
            self.handlers[type] = fn
            if exclusive:
                self._shared.discard(type)
            else:
                self._shared.add(type)
            self.verifier.accepted_types = frozenset(self.handlers)
            return fn

        return register

    def _refuse(self, exc: Exception) -> Reply:
        name = type(exc).__name__
        self.stats.refused[name] = self.stats.refused.get(name, 0) + 1
        return _refusal(exc)

    def dispatch(self, raw: bytes) -> Reply:
        """Verify ``raw`` envelope bytes and run the handler of their type."""
        self.stats.requests += 1
        self.stats.bytes_in += len(raw)
        with self._lock:
            try:
                env = Envelope.from_bytes(raw, max_bytes=self.verifier.max_body_bytes + 4096)
            except EnvelopeError as exc:
                return self._refuse(exc)
            try:
                self.verifier.verify(env, now=self.clock())
            except ReplayedNonce as exc:
                cached = self._answers.get(env.id)
                return cached if cached is not None else self._refuse(exc)
            except EnvelopeError as exc:
                return self._refuse(exc)
            if env.type not in self._shared:
                return self._remember(env, self._handle(env))
        reply = self._handle(env)  # verified and recorded as seen; the handler runs unlocked
        with self._lock:
            return self._remember(env, reply)

    def _handle(self, env: Envelope) -> Reply:
        try:
            body = self.handlers[env.type](env)
            return Reply(200, body if body is not None else {})
        except (DeaiError, EncodingError) as exc:
            return self._refuse(exc)
        except Exception as exc:  # a handler bug must not take the node down
            log.exception("handler for %s failed", env.type)
            return self._refuse(ServiceError(f"internal error in {env.type}: {type(exc).__name__}", 500))

    def _remember(self, env: Envelope, reply: Reply) -> Reply:
        """Keep the answer so that an identical envelope sent again (a retry) gets it back."""
        self._answers[env.id] = reply
        if len(self._answers) > self._answer_cache_size:
            self._answers.popitem(last=False)
        return reply

    # -- blobs ---------------------------------------------------------------------------------

    def put_blob(self, chunks: Iterable[bytes], expected: str | None = None) -> Reply:
        """Store an upload; with ``expected``, refuse bytes that hash to anything else."""
        size = 0

        def counted() -> Iterator[bytes]:
            nonlocal size
            for c in chunks:
                size += len(c)
                yield c

        try:
            digest = self.blobs.put_stream(counted(), expected=expected)
        except (DeaiError, EncodingError) as exc:
            return self._refuse(exc)
        finally:
            self.stats.bytes_in += size
        return Reply(200, {"digest": digest, "size": size})

    def open_blob(self, digest: str) -> Iterator[bytes]:
        """Chunks of a stored blob, verified while streaming (raises BlobNotFound first)."""
        size = self.blobs.size(digest)
        self.stats.bytes_out += size
        return self.blobs.get_stream(digest)
