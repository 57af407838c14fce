"""Hidden scoring sets held by the hub until their round's updates are committed (``task.seal``).

A task scores its providers on data they cannot train on: the creator commits to held-back sets by
digest in the spec (``scoring_sets``) and hands their bytes to the coordinating hub after creating
the task (:meth:`deai.node.participant.client.HubClient.seal`). The hub keeps them in a *sealed* store, a
separate directory the blob endpoint never serves, so asking ``GET /v1/blobs/<digest>`` for a set
before its round is refused like any unknown blob. The task's coordinator reveals round ``r``'s set
-- copies it into the public store, where the score job's executors and anyone else fetch it -- only
when round ``r``'s updates are committed (:func:`deai.protocol.task.scoring.reveal_scoring_set`).

Anyone may send ``task.seal``: a body is taken only when its bytes hash to one of the task's
committed digests (only the creator knows such bytes) and parse as the task's data (shapes, dtypes,
finiteness), so nobody can make a public blob unfetchable or plant a set the spec does not name.
The body's size is bounded by the endpoint's request limit.

Trust: the hub sees the sets before they are revealed; a hub that leaks one to a provider lets that
provider train on it for that round. The hub is the coordinator of its tasks already (docs/incentives.md).
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path
from typing import Any

from deai.core.blobs import BlobStore
from deai.core.encoding import sha256_hex
from deai.core.errors import DeaiError
from deai.net.endpoint import ServiceError
from deai.node.participant.client import SEAL
from deai.protocol.task.model import parse_data
from deai.protocol.task.spec import TaskSpec

__all__ = ["SEAL", "SealedSets"]


class SealedSets:
    """The sealed store of a hub: scoring sets taken in, never served until a coordinator reveals them."""

    def __init__(self, store: BlobStore) -> None:
        self.store = store

    @classmethod
    def beside(cls, public: BlobStore) -> SealedSets:
        """A sealed store in ``public``'s directory (``root/sealed``: a name the public store's
        two-hex-character layout never serves)."""
        return cls(BlobStore(Path(public.root) / "sealed", max_bytes=public.max_bytes))

    def take(self, spec: TaskSpec, body: dict[str, Any]) -> dict[str, Any]:
        """Take one scoring set of ``spec``'s task from a ``task.seal`` body, or refuse it."""
        raw = body["data"]
        if not isinstance(raw, str):
            raise ServiceError("data must be a base64 string")
        try:
            data = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise ServiceError("data is not valid base64") from None
        digest = sha256_hex(data)
        if digest not in spec.scoring_sets:
            raise ServiceError(f"{digest[:12]}.. is not a scoring set of task {spec.task_id[:14]}..", 403)
        try:
            parse_data(data, spec.in_features, spec.num_classes)
        except DeaiError as exc:
            raise ServiceError(f"scoring set {digest[:12]}.. refused: {exc}") from None
        if digest not in self.store:
            self.store.put(data, expected=digest)
        return {"sealed": digest, "round_of_reveal": 1 + spec.scoring_sets.index(digest)}
