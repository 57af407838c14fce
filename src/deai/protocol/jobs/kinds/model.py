"""Shared by the model-based kinds: build a registered model from job params and load a checkpoint.

Job params name the model as ``{"model": name, "in_features": F, "num_classes": C, "model_kwargs": {}}``.
Only names in :data:`deai.learn.models.MODELS` are accepted: an ``"pkg.module:Class"`` import path
would let a job creator make executors import arbitrary code.
A checkpoint input is a safetensors state dict: the model's ``state_dict`` less its frozen
parameters (:func:`deai.learn.training.shared_state`; for a LoRA model, its adapters: the base
weights come from the executor's own copy of the named base). Its names, shapes and dtypes must be
exactly those (so a malformed checkpoint is refused before any computation).
An update is the model's state vector (:func:`deai.learn.training.get_flat`: trainable
parameters, then floating-point buffers) as one flat float vector.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from deai.learn.errors import LearnError
from deai.learn.models import MODELS, build_model
from deai.learn.training import shared_state, state_names
from deai.protocol.jobs.errors import BadJobSpec, InputMismatch
from deai.protocol.jobs.kinds.base import Tensors, int_param

__all__ = ["check_model_params", "flat_update", "load_model", "model_layout"]


def check_model_params(params: Mapping[str, Any]) -> None:
    name = params.get("model")
    if not isinstance(name, str) or name not in MODELS:
        raise BadJobSpec(f"params.model must be one of {MODELS.names()}, got {name!r}")
    int_param(params, "in_features", 1, 1 << 24)
    int_param(params, "num_classes", 1, 1 << 20)
    if not isinstance(params.get("model_kwargs", {}), dict):
        raise BadJobSpec("params.model_kwargs must be an object")


def _build(params: Mapping[str, Any]) -> nn.Module:
    check_model_params(params)
    try:
        return build_model(
            params["model"],
            params["in_features"],
            params["num_classes"],
            seed=0,
            **params.get("model_kwargs", {}),
        )
    except (LearnError, TypeError, ValueError) as exc:
        raise BadJobSpec(f"cannot build model from params: {exc}") from exc


def model_layout(params: Mapping[str, Any]) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """The checkpoint layout the params' model expects."""
    return {k: (tuple(v.shape), v.dtype) for k, v in shared_state(_build(params)).items()}


def load_model(params: Mapping[str, Any], checkpoint: Tensors, *, what: str = "checkpoint") -> nn.Module:
    """Build the model and load ``checkpoint`` after checking it matches exactly."""
    model = _build(params)
    expected = {k: (tuple(v.shape), v.dtype) for k, v in shared_state(model).items()}
    got = {k: (tuple(v.shape), v.dtype) for k, v in checkpoint.items()}
    if got != expected:
        missing, extra = sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
        wrong = sorted(k for k in set(got) & set(expected) if got[k] != expected[k])
        raise InputMismatch(
            f"{what} does not fit the model: missing {missing}, unexpected {extra}, wrong {wrong}"
        )
    result = model.load_state_dict(checkpoint, strict=False)
    assert not result.unexpected_keys and set(result.missing_keys).isdisjoint(expected)  # checked above
    model.eval()
    return model


def flat_update(model: nn.Module, update: Tensors, index: int) -> torch.Tensor:
    """An update as one float32 vector in the model's state-vector order.

    Accepts either one 1-D tensor of the state vector's length (the learn layer's flat delta) or a
    dict with exactly the state vector's names and shapes.
    """
    tensors = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    named = {k: tensors[k] for k in state_names(model)}
    total = sum(p.numel() for p in named.values())
    if len(update) == 1:
        (t,) = update.values()
        if t.dim() == 1 and t.numel() == total and t.is_floating_point():
            return t.float()
    if set(update) == set(named) and all(update[k].shape == p.shape for k, p in named.items()):
        return torch.cat([update[k].reshape(-1).float() for k in named])
    raise InputMismatch(
        f"update {index} is neither a flat vector of {total} floats nor the model's state tensors"
    )
