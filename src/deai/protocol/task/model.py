"""The task's model as bytes: checkpoints, flat updates and validation data, all safetensors.

- a **checkpoint** is the model's ``state_dict`` (exact names, shapes, dtypes);
- an **update** is ``{"delta": float32 [d]}``, the flat parameter delta in ``named_parameters()``
  order (:func:`deai.learn.training.get_flat`), which is what the ``aggregate`` and ``score`` job
  kinds take;
- **validation data** is ``{"x": float32 [N, F], "y": int64 [N]}``.

Everything parsed here comes from another party and is checked against the layout the task spec
implies before use.
"""

from __future__ import annotations

import torch
from torch import nn

from deai.core.errors import DeaiError
from deai.core.tensorio import from_safetensors, to_safetensors
from deai.learn.data import Dataset
from deai.learn.models import build_model
from deai.learn.training import get_flat, set_flat
from deai.protocol.task.errors import BadUpdate
from deai.protocol.task.spec import TaskSpec

__all__ = [
    "MAX_UPDATE_BYTES",
    "build",
    "checkpoint_bytes",
    "data_bytes",
    "load_checkpoint",
    "load_update",
    "model_params",
    "param_count",
    "parse_data",
    "update_bytes",
]

MAX_UPDATE_BYTES = 256 << 20


def build(spec: TaskSpec, seed: int = 0) -> nn.Module:
    return build_model(spec.model, spec.in_features, spec.num_classes, seed=seed, **spec.model_kwargs)


def model_params(spec: TaskSpec) -> dict:
    """The model part of job params (``score`` and friends)."""
    return {
        "model": spec.model,
        "in_features": spec.in_features,
        "num_classes": spec.num_classes,
        "model_kwargs": spec.model_kwargs,
    }


def param_count(spec: TaskSpec) -> int:
    return sum(p.numel() for p in build(spec).parameters())


def checkpoint_bytes(model: nn.Module) -> bytes:
    return to_safetensors(model.state_dict())


def load_checkpoint(spec: TaskSpec, data: bytes) -> nn.Module:
    """Build the spec's model and load checkpoint bytes after checking their exact layout."""
    model = build(spec)
    layout = {k: (tuple(v.shape), v.dtype) for k, v in model.state_dict().items()}
    try:
        state = from_safetensors(data, expected=layout, max_bytes=MAX_UPDATE_BYTES)
    except DeaiError as exc:
        raise BadUpdate(f"checkpoint does not fit the task's model: {exc}") from exc
    model.load_state_dict(state, strict=True)
    return model


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


def data_bytes(data: Dataset) -> bytes:
    return to_safetensors({"x": data.x.float().contiguous(), "y": data.y.long().contiguous()})


def parse_data(data: bytes, in_features: int, num_classes: int) -> Dataset:
    try:
        t = from_safetensors(data, max_bytes=MAX_UPDATE_BYTES)
        if set(t) != {"x", "y"}:
            raise BadUpdate(f"data must hold exactly x and y, got {sorted(t)}")
        return Dataset(t["x"].float(), t["y"].long(), num_classes, (in_features,), "validation")
    except DeaiError as exc:
        raise BadUpdate(f"data refused: {exc}") from exc


def apply_flat(spec: TaskSpec, checkpoint: bytes, vec: torch.Tensor) -> nn.Module:
    """A model holding ``vec`` as parameters (layout of ``checkpoint``'s model)."""
    model = load_checkpoint(spec, checkpoint)
    set_flat(model, vec)
    return model


def flat_of(spec: TaskSpec, checkpoint: bytes) -> torch.Tensor:
    return get_flat(load_checkpoint(spec, checkpoint))
