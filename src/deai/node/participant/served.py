"""What a served model is, and how anyone finds it from the ledger alone.

A registered model's id is derived by the ledger from its registrant, task and provenance
``document`` (:func:`deai.ledger.commitments.model_id`); the document blob (hashing to the ledger's
``document``) is the :class:`~deai.protocol.incentives.royalties.Provenance` record, which names the
model's ``checkpoint`` (``0x`` + SHA-256 of the safetensors checkpoint blob). A task's model is
registered that way by its coordinator, and :func:`publish_model` does the same for a model
registered directly. What architecture the checkpoint belongs to is public too:

- a task's model: the task's spec (the blob named by the ledger's task record, hashing to the task
  id) names the model, its features and classes;
- a model registered directly: its provenance document also holds a ``"params"`` object
  ``{"model", "in_features", "num_classes", "model_kwargs"}``.

:func:`resolve_model` rebuilds a :class:`~deai.protocol.inference.ServedModel` from the ledger and
blobs, checking every hash and the checkpoint's layout against the architecture; hub, hosts and
users each call it, so none has to trust another's word for what is served. The hub calls it on its
own ledger and blob store; hosts and users call :func:`remote_model`, the same reads through a hub
client with every blob re-hashed. (It lives on the participant side because a host needs it; the
hub and the user's client import it from here.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import torch

from deai.core.accounts import Account
from deai.core.blobs import BlobStore
from deai.core.encoding import canonical, parse_json, sha256_hex
from deai.core.errors import BlobCorrupted, DeaiError, TensorError
from deai.core.tensorio import from_safetensors
from deai.ledger.records import ModelRecord, TaskRecord
from deai.ledger.txs import RegisterModel
from deai.node.participant.client import HubClient
from deai.protocol.incentives.royalties import Provenance
from deai.protocol.inference.service import MAX_BATCH, ServedModel
from deai.protocol.jobs.kinds.model import load_model
from deai.protocol.task.model import model_params
from deai.protocol.task.spec import TaskSpec

__all__ = [
    "MAX_BATCH",
    "MAX_BATCH_BYTES",
    "BlobReader",
    "ModelRecords",
    "UnknownServedModel",
    "check_batch",
    "load_served",
    "model_document",
    "publish_model",
    "remote_model",
    "resolve_model",
]

MAX_BATCH_BYTES = 8 << 20
MAX_DOCUMENT_BYTES = 1 << 20  # a provenance document (its params and contributors' shares)


class UnknownServedModel(DeaiError):
    """The model is not registered, or what the ledger says of it cannot be served."""


class ModelRecords(Protocol):
    """The ledger reads :func:`resolve_model` needs (a :class:`~deai.ledger.base.Ledger`, or a hub
    client's queries)."""

    def model(self, model_id: str) -> ModelRecord | None: ...

    def task(self, task_id: str) -> TaskRecord | None: ...


class BlobReader(Protocol):
    """The blob reads :func:`resolve_model` needs (a :class:`~deai.core.blobs.BlobStore`, or a hub
    client that checks each blob's hash)."""

    def get(self, digest: str) -> bytes: ...


def _blob(store: BlobReader, digest: str, what: str) -> bytes:
    try:
        return store.get(digest.removeprefix("0x"))
    except DeaiError as exc:
        raise UnknownServedModel(f"{what} {digest[:14]}... is not available: {exc}") from None


def resolve_model(ledger: ModelRecords, store: BlobReader, model_id: str) -> ServedModel:
    """The served model behind a registered ``model_id`` (see the module docstring)."""
    if not isinstance(model_id, str) or not model_id.startswith("0x") or len(model_id) != 66:
        raise UnknownServedModel(f"a model id is 0x + 64 hex digits, got {str(model_id)[:80]!r}")
    model_id = model_id.lower()
    record = ledger.model(model_id)
    if record is None:
        raise UnknownServedModel(f"no model {model_id} is registered on the ledger")
    try:
        doc = parse_json(
            _blob(store, record.document, "provenance document"),
            max_bytes=MAX_DOCUMENT_BYTES,
            what="provenance document",
        )
        checkpoint = doc["checkpoint"]
        if not isinstance(checkpoint, str) or not checkpoint.startswith("0x") or len(checkpoint) != 66:
            raise TypeError
        params: Any = None if record.task is not None else doc["params"]
    except (ValueError, KeyError, TypeError):
        raise UnknownServedModel(
            f"model {model_id}: its provenance document names no checkpoint and params to serve it with"
        ) from None
    if record.task is not None:
        try:  # the task's spec is anyone's upload: any fault in it means the model cannot be served
            task = ledger.task(record.task)
            if task is None:
                raise KeyError(f"task {record.task} is not on the ledger")
            spec = TaskSpec.from_bytes(_blob(store, task.params, "task spec"), task_id=record.task)
        except (DeaiError, KeyError, TypeError) as exc:
            raise UnknownServedModel(f"model {model_id}: its task spec cannot be read: {exc}") from None
        params = model_params(spec)
    try:
        return ServedModel(model_id, checkpoint[2:], dict(params))
    except (DeaiError, TypeError, ValueError) as exc:  # params that are no object, or bad ones
        raise UnknownServedModel(f"model {model_id} cannot be served: {exc}") from None


class _Remote:
    """The ledger and blob reads :func:`resolve_model` needs, through a hub (blobs re-hashed here)."""

    def __init__(self, client: HubClient) -> None:
        self.client = client

    def model(self, model_id: str) -> ModelRecord | None:
        return self.client.model(model_id)

    def task(self, task_id: str) -> TaskRecord | None:
        return self.client.task(task_id)

    def get(self, digest: str) -> bytes:
        data = self.client.get_blob(digest)
        if sha256_hex(data) != digest:
            raise BlobCorrupted(f"the hub served blob {digest[:12]}... with the wrong content")
        return data


def remote_model(client: HubClient, model_id: str) -> ServedModel:
    """The served model, found from the ledger through ``client`` (hashes checked here); raises
    :class:`UnknownServedModel` if it cannot be served or the hub serves a blob that does not hash."""
    remote = _Remote(client)
    return resolve_model(remote, remote, model_id)


def load_served(served: ServedModel, store: BlobStore) -> torch.nn.Module:
    """Build the model and load its checkpoint (hash re-checked on read; exact layout, finite)."""
    data = _blob(store, served.checkpoint, "checkpoint")
    return load_model(served.params, from_safetensors(data), what=f"checkpoint of {served.model_id}")


def check_batch(data: bytes, in_features: int, num_classes: int) -> torch.Tensor:
    """An inference batch blob: safetensors ``{"x": ...}`` that the ``infer`` kind takes
    (:func:`deai.protocol.jobs.kinds.infer.check_batch_x`: features or images float32, or token
    windows int64), 1 <= B <= :data:`MAX_BATCH`. Raises :class:`~deai.core.errors.TensorError`
    naming the fault."""
    from deai.protocol.jobs.errors import InputMismatch
    from deai.protocol.jobs.kinds.infer import check_batch_x

    if len(data) > MAX_BATCH_BYTES:
        raise TensorError(f"the batch is {len(data)} bytes, over the limit of {MAX_BATCH_BYTES}")
    tensors = from_safetensors(data, require_finite=False)
    if set(tensors) != {"x"}:
        raise TensorError(f"a batch holds exactly one tensor 'x', got {sorted(tensors)}")
    x = tensors["x"]
    if x.dim() >= 1 and not 1 <= x.shape[0] <= MAX_BATCH:
        raise TensorError(f"a batch holds 1..{MAX_BATCH} rows, got {x.shape[0]}")
    try:
        check_batch_x(x, in_features, num_classes)
    except InputMismatch as exc:
        raise TensorError(str(exc)) from exc
    return x


def model_document(provenance: Provenance, params: Mapping[str, Any]) -> bytes:
    """The document blob of a directly registered model: its provenance record and params."""
    return canonical({**provenance.to_json(), "params": dict(params)})


def publish_model(
    client: Any,
    owner: Account,
    checkpoint: bytes,
    params: Mapping[str, Any],
    shares: Mapping[str, int | float],
    *,
    host_bps: int = 3_000,
) -> str:
    """Register a model directly through a hub (``client``: a
    :class:`~deai.node.participant.client.HubClient`): upload the checkpoint and the document, send
    ``register_model``; returns the model id (the ledger binds it to ``owner``). ``shares`` are the
    contributors' provenance scores (normalised to shares)."""
    from deai.core.encoding import sha256_hex
    from deai.ledger.commitments import model_id as ledger_model_id

    digest = sha256_hex(checkpoint)
    ServedModel("0x" + digest, digest, dict(params))  # refuse bad params before any upload
    scores = {a: float(s) for a, s in shares.items()}
    provenance = Provenance.from_scores(owner.address, "0x" + digest, None, scores)
    doc = model_document(provenance, params)
    client.put_blob(checkpoint, expected=digest)
    document = client.put_blob(doc, expected=sha256_hex(doc))
    model_id = ledger_model_id(owner.address, None, "0x" + document.removeprefix("0x"))
    client.send_tx(
        owner,
        RegisterModel(
            model=model_id,
            task=None,
            provenance=provenance.tree.root,
            document="0x" + document.removeprefix("0x"),
            total_shares=provenance.total,
            host_bps=host_bps,
        ),
    )
    return model_id
