"""The task's model as bytes: checkpoints, flat updates and validation data, all safetensors.

- a **checkpoint** is the model's shared state (:func:`deai.learn.training.shared_state`: its
  ``state_dict`` less frozen parameters -- a LoRA checkpoint holds the adapters, the base weights
  are every participant's own copy of the named base, pinned by ``model_kwargs["digest"]``);
- an **update** is ``{"delta": float32 [d]}``, the flat state-vector delta (trainable parameters,
  then floating-point buffers such as batch-norm statistics; :func:`deai.learn.training.get_flat`),
  which is what the ``aggregate`` and ``contribution_score`` job kinds take;
- **validation data** is ``{"x", "y"}``: labelled features or images (``x`` float32 ``[N, ...]``,
  ``y`` int64 ``[N]``) or token windows (``x`` and ``y`` int64 ``[N, T]``).

Everything parsed here comes from another party and is checked against the layout the task spec
implies before use; models are built and checkpoints loaded by the one loader the job kinds use
(:func:`deai.protocol.jobs.kinds.model.load_model`).
"""

from __future__ import annotations

import torch
from torch import nn

from deai.core.encoding import sha256
from deai.core.errors import DeaiError
from deai.core.tensorio import from_safetensors, to_safetensors
from deai.learn.data import Dataset
from deai.learn.models import build_model, count_state
from deai.learn.training import get_flat, set_flat, shared_state
from deai.protocol.jobs.kinds.base import dataset_input
from deai.protocol.jobs.kinds.model import load_model
from deai.protocol.task.errors import BadUpdate
from deai.protocol.task.spec import TaskSpec

__all__ = [
    "MAX_UPDATE_BYTES",
    "apply_flat",
    "build",
    "checkpoint_bytes",
    "compression_seed",
    "data_bytes",
    "dense_tail",
    "flat_of",
    "load_checkpoint",
    "load_sent",
    "load_update",
    "model_params",
    "param_count",
    "parse_data",
    "shared_support",
    "update_bytes",
]

MAX_UPDATE_BYTES = 256 << 20


def build(spec: TaskSpec, seed: int = 0) -> nn.Module:
    """The spec's model, freshly initialized with ``seed`` (the task creator's initial checkpoint)."""
    return build_model(spec.model, spec.in_features, spec.num_classes, seed=seed, **spec.model_kwargs)


def model_params(spec: TaskSpec) -> dict:
    """The model part of job params (``contribution_score``, ``infer`` and friends)."""
    return {
        "model": spec.model,
        "in_features": spec.in_features,
        "num_classes": spec.num_classes,
        "model_kwargs": spec.model_kwargs,
    }


_COUNTS: dict[tuple[str, bool], int] = {}  # (spec digest, buffers) -> count: a meta build each is not free


def _count(spec: TaskSpec, buffers: bool) -> int:
    key = (spec.digest, buffers)
    if key not in _COUNTS:
        if len(_COUNTS) > 4096:
            _COUNTS.clear()
        _COUNTS[key] = count_state(
            spec.model, spec.in_features, spec.num_classes, buffers=buffers, **spec.model_kwargs
        )
    return _COUNTS[key]


def param_count(spec: TaskSpec) -> int:
    """The length ``d`` of the spec's state vector (an update), counted without building the model."""
    return _count(spec, False)


def dense_tail(spec: TaskSpec) -> int:
    """How many of the state vector's last values (the floating-point buffers: batch-norm
    statistics) travel uncompressed in a compressed update (:mod:`deai.learn.compression.tail`)."""
    return _count(spec, True)


def checkpoint_bytes(model: nn.Module) -> bytes:
    return to_safetensors({k: v.contiguous() for k, v in shared_state(model).items()})


def load_checkpoint(spec: TaskSpec, data: bytes) -> nn.Module:
    """Build the spec's model and load checkpoint bytes after checking their exact layout."""
    try:
        state = from_safetensors(data, max_bytes=MAX_UPDATE_BYTES)
        return load_model(model_params(spec), state)
    except DeaiError as exc:
        raise BadUpdate(f"checkpoint does not fit the task's model: {exc}") from exc


def update_bytes(delta: torch.Tensor) -> bytes:
    return to_safetensors({"delta": delta.detach().float().contiguous()})


def load_update(data: bytes, dim: int) -> torch.Tensor:
    """Parse an update blob: exactly ``{"delta": float32 [dim]}``, finite."""
    try:
        out = from_safetensors(
            data, expected={"delta": ((dim,), torch.float32)}, require_finite=True, max_bytes=MAX_UPDATE_BYTES
        )
    except DeaiError as exc:
        raise BadUpdate(f"update refused: {exc}") from exc
    return out["delta"]


def load_sent(data: bytes, spec: TaskSpec, dim: int) -> torch.Tensor:
    """Parse an update blob as the task's providers send it: dense (:func:`load_update`) or, when
    the task compresses, checked field by field and decompressed (``deai.learn.compression``)."""
    if spec.compression == "none":
        return load_update(data, dim)
    from deai.learn.compression import decompress_with_tail, get_compressor, tail_bytes
    from deai.learn.errors import LearnError

    comp, tail = get_compressor(spec.compression), dense_tail(spec)
    try:
        tensors = from_safetensors(data, max_bytes=comp.max_bytes(dim - tail) + tail_bytes(tail))
        return decompress_with_tail(comp, tensors, dim, tail)
    except (DeaiError, LearnError, ValueError) as exc:
        raise BadUpdate(f"compressed update refused: {exc}") from exc


def compression_seed(spec: TaskSpec, round: int, address: str) -> int:
    """The compressor's seed (random-k support, stochastic rounding) of ``address`` in ``round``:
    one per round for all providers under secure aggregation (their supports must coincide for the
    masked values to add up), else one per provider (their supports cover more coordinates)."""
    who = "" if spec.secure_aggregation else address
    return int.from_bytes(sha256(f"{spec.task_id}:{round}:{who}:compress".encode())[:8], "big") & (2**62 - 1)


def shared_support(spec: TaskSpec, round: int, dim: int) -> torch.Tensor | None:
    """The round's shared random-k support under secure aggregation (sorted indices), else None."""
    from deai.learn.compression import get_compressor
    from deai.learn.compression.randomk import random_support

    comp = get_compressor(spec.compression)
    if not spec.secure_aggregation or comp.sparsifier is None:
        return None
    head = dim - dense_tail(spec)  # the buffers travel whole: always on the support
    support = random_support(head, comp.max_k(head), compression_seed(spec, round, ""))
    return torch.cat([support, torch.arange(head, dim, dtype=support.dtype)])


def data_bytes(data: Dataset) -> bytes:
    x = data.x if data.is_tokens else data.x.float()
    return to_safetensors({"x": x.contiguous(), "y": data.y.long().contiguous()})


def parse_data(data: bytes, in_features: int, num_classes: int) -> Dataset:
    """Validation data bytes as a :class:`Dataset` the task's model takes
    (:func:`deai.protocol.jobs.kinds.base.dataset_input`: shapes, dtypes, ids, finiteness)."""
    try:
        t = from_safetensors(data, max_bytes=MAX_UPDATE_BYTES)
        if set(t) != {"x", "y"}:
            raise BadUpdate(f"data must hold exactly x and y, got {sorted(t)}")
        params = {"in_features": in_features, "num_classes": num_classes}
        return dataset_input([t], 0, params, "validation")
    except DeaiError as exc:
        raise BadUpdate(f"data refused: {exc}") from exc


def apply_flat(spec: TaskSpec, checkpoint: bytes, vec: torch.Tensor) -> nn.Module:
    """A model holding ``vec`` as its state vector (layout of ``checkpoint``'s model)."""
    model = load_checkpoint(spec, checkpoint)
    set_flat(model, vec)
    return model


def flat_of(spec: TaskSpec, checkpoint: bytes) -> torch.Tensor:
    return get_flat(load_checkpoint(spec, checkpoint))
