"""The client side: one small interface for every transport.

A :class:`Transport` sends signed envelopes and moves blobs. Blobs are checked on the *client*
too: the bytes received must hash to the digest asked for, so an untrusted relay cannot swap
content. Uploads are signed: each is authorized by a ``blob.put`` envelope ``{digest, size}``
from the uploading account (:func:`upload_envelope`), which the server charges for the bytes.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from typing import Any

from deai.core.accounts import Account
from deai.core.blobs import check_digest
from deai.core.envelope import Envelope
from deai.core.errors import BlobCorrupted, DeaiError

__all__ = ["RemoteError", "Transport", "upload_envelope", "verified"]


class RemoteError(DeaiError):
    """The other side refused a request; ``status`` and ``error`` say why."""

    def __init__(self, status: int, error: str, reason: str) -> None:
        super().__init__(f"{status} {error}: {reason}")
        self.status, self.error, self.reason = status, error, reason


def upload_envelope(account: Account, network: str, digest: str, size: int) -> Envelope:
    """The signed authorization of one upload: ``account`` uploads ``size`` bytes of ``digest``."""
    return Envelope.seal(account, "blob.put", {"digest": check_digest(digest), "size": size}, network)


def verified(digest: str, chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Pass ``chunks`` through, raising BlobCorrupted at the end if they do not hash to ``digest``."""
    digest = check_digest(digest)
    h = hashlib.sha256()
    for chunk in chunks:
        h.update(chunk)
        yield chunk
    if h.hexdigest() != digest:
        raise BlobCorrupted(f"received bytes hash to {h.hexdigest()}, not the requested {digest}")


class Transport(ABC):
    """Send envelopes and blobs to one endpoint. Counts the bytes it moves."""

    bytes_sent: int = 0
    bytes_received: int = 0
    # Whether requests may be sent from several threads at once and gain from it (a network
    # client); the in-memory transport says no, so simulations stay single-threaded.
    concurrent: bool = False

    @abstractmethod
    def send(self, envelope: Envelope) -> dict[str, Any]:
        """Deliver a signed envelope; return the handler's answer or raise RemoteError."""

    @abstractmethod
    def put_blob(
        self, data: bytes | Iterable[bytes], *, account: Account, network: str, expected: str | None = None
    ) -> str:
        """Upload bytes as ``account`` on ``network``; return their digest (checked against
        ``expected`` by the server). The account needs upload quota there (stake or balance)."""

    @abstractmethod
    def iter_blob(self, digest: str) -> Iterator[bytes]:
        """Download a blob in chunks, verified against ``digest`` as it arrives."""

    def get_blob(self, digest: str) -> bytes:
        return b"".join(self.iter_blob(digest))

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections (nothing to do for in-memory transports)."""
