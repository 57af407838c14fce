"""The in-memory transport: same bytes, same checks, no sockets.

Envelopes are serialized to their wire bytes and dispatched through the target
:class:`~deai.net.endpoint.Endpoint`, so simulations exercise the same verification as a real
network and count the same bytes: :attr:`MemoryTransport.traffic` counts what the HTTP client would
send and receive as payload (envelope bytes, upload authorizations, the JSON answers as the server
renders them, blob bodies; not HTTP headers). Given a :class:`~deai.net.links.Link`, it also adds up
the seconds each request would take over it (``traffic.link_seconds``): an envelope or upload goes
up the uplink and its answer down the downlink, a download comes down the downlink, plus the link's
latency once per request.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from typing import Any

from deai.core.accounts import Account
from deai.core.blobs import check_digest
from deai.core.envelope import Envelope
from deai.net.endpoint import Endpoint, Reply
from deai.net.links import Link, Traffic
from deai.net.transport import RemoteError, Transport, upload_envelope, verified

__all__ = ["MemoryTransport", "answer_bytes"]


def answer_bytes(reply: Reply) -> int:
    """The size of ``reply``'s JSON body as the HTTP server sends it (Starlette's JSONResponse)."""
    rendered = json.dumps(reply.body, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":"))
    return len(rendered.encode("utf-8"))


class MemoryTransport(Transport):
    """A client of ``endpoint`` in the same process; ``link``: the simulated connection whose
    transfer seconds accumulate in ``traffic.link_seconds`` (None: none counted)."""

    def __init__(self, endpoint: Endpoint, link: Link | None = None) -> None:
        self.endpoint = endpoint
        self.link = link
        self.traffic = Traffic()

    def _count(self, sent: int, received: int, *, blob_sent: int = 0, blob_received: int = 0) -> None:
        t = self.traffic
        t.sent += sent
        t.received += received
        t.blob_sent += blob_sent
        t.blob_received += blob_received
        if self.link is not None:
            t.link_seconds += self.link.upload_s(sent) + self.link.download_s(received)
        self.bytes_sent, self.bytes_received = t.sent, t.received

    def _request(self) -> None:
        self.traffic.requests += 1
        if self.link is not None:
            self.traffic.link_seconds += self.link.latency_ms / 1000

    def send(self, envelope: Envelope) -> dict[str, Any]:
        raw = envelope.to_bytes()
        self._request()
        reply = self.endpoint.dispatch(raw)
        self._count(len(raw), answer_bytes(reply))
        if not reply.ok:
            raise RemoteError(reply.status, reply.body.get("error", ""), reply.body.get("reason", ""))
        return reply.body

    def put_blob(
        self, data: bytes | Iterable[bytes], *, account: Account, network: str, expected: str | None = None
    ) -> str:
        # The same authorization as over HTTP: the digest and size are signed before any byte moves.
        content = bytes(data) if isinstance(data, bytes | bytearray) else b"".join(data)
        digest = check_digest(expected) if expected is not None else hashlib.sha256(content).hexdigest()
        auth = upload_envelope(account, network, digest, len(content)).to_bytes()
        self._request()
        reply = self.endpoint.put_blob([content], digest, auth)
        self._count(len(content) + len(auth), answer_bytes(reply), blob_sent=len(content))
        if not reply.ok:
            raise RemoteError(reply.status, reply.body.get("error", ""), reply.body.get("reason", ""))
        return reply.body["digest"]

    def iter_blob(self, digest: str) -> Iterator[bytes]:
        self._request()
        try:
            chunks = self.endpoint.open_blob(digest)
        except Exception as exc:
            reply = self.endpoint._refuse(exc)
            self._count(0, answer_bytes(reply))
            raise RemoteError(reply.status, reply.body["error"], reply.body["reason"]) from exc
        for chunk in verified(digest, chunks):
            self._count(0, len(chunk), blob_received=len(chunk))
            yield chunk
