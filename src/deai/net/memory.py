"""The in-memory transport: same bytes, same checks, no sockets.

Envelopes are serialized to their wire bytes and dispatched through the target
:class:`~deai.net.endpoint.Endpoint`, so simulations exercise the same verification as a real
network and count the same bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from typing import Any

from deai.core.accounts import Account
from deai.core.blobs import check_digest
from deai.core.envelope import Envelope
from deai.net.endpoint import Endpoint
from deai.net.transport import RemoteError, Transport, upload_envelope, verified

__all__ = ["MemoryTransport"]


class MemoryTransport(Transport):
    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.bytes_sent = 0
        self.bytes_received = 0

    def send(self, envelope: Envelope) -> dict[str, Any]:
        raw = envelope.to_bytes()
        self.bytes_sent += len(raw)
        reply = self.endpoint.dispatch(raw)
        if not reply.ok:
            raise RemoteError(reply.status, reply.body.get("error", ""), reply.body.get("reason", ""))
        return reply.body

    def put_blob(
        self, data: bytes | Iterable[bytes], *, account: Account, network: str, expected: str | None = None
    ) -> str:
        # The same authorization as over HTTP: the digest and size are signed before any byte moves.
        content = bytes(data) if isinstance(data, bytes | bytearray) else b"".join(data)
        digest = check_digest(expected) if expected is not None else hashlib.sha256(content).hexdigest()
        self.bytes_sent += len(content)
        auth = upload_envelope(account, network, digest, len(content)).to_bytes()
        reply = self.endpoint.put_blob([content], digest, auth)
        if not reply.ok:
            raise RemoteError(reply.status, reply.body.get("error", ""), reply.body.get("reason", ""))
        return reply.body["digest"]

    def iter_blob(self, digest: str) -> Iterator[bytes]:
        try:
            chunks = self.endpoint.open_blob(digest)
        except Exception as exc:
            reply = self.endpoint._refuse(exc)
            raise RemoteError(reply.status, reply.body["error"], reply.body["reason"]) from exc
        for chunk in verified(digest, chunks):
            self.bytes_received += len(chunk)
            yield chunk
