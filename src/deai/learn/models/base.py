"""The model registry and the checks every model built from a foreign description goes through.

A model is any ``torch.nn.Module`` built as ``Factory(in_features, num_classes, **kwargs)``:
``in_features`` is the input size (features of a flat row, ``C*H*W`` of an image, the context
length of a language model) and ``num_classes`` the output size (classes, or the vocabulary of a
language model). ``model(x)`` returns logits (``[B, C]``, or ``[B, T, V]`` for a language model) or
an object with a ``logits`` attribute (Hugging Face models); see :mod:`deai.learn.objectives`.

Models are registered by name with ``@MODELS.register("name")`` where the class is defined (one
model per file in this package); ``"pkg.module:ClassName"`` imports a user's class (local runs
only: the task spec refuses import paths, which would make every participant run code chosen by
the task creator).

Model arguments often come from another party (a task spec, a job's params, a model document), so
:func:`build_model` checks them before anything is allocated: each keyword argument of a registry
model is ``None``, a bool, an integer in ``[1, MAX_DIM]`` (a dimension), a finite float of magnitude
at most :data:`MAX_DIM` (a rate), a short name (``[A-Za-z0-9_.-]``, at most 64 characters) or a list
of at most :data:`MAX_KWARG_ITEMS` dimensions, floats or names,
and the model is first built on the ``meta`` device (no memory) to count its parameters, refusing
more than :data:`MAX_PARAMS`. Every refusal is a :class:`ModelError`.
Pass ``seed`` to :func:`build_model` for a reproducible initialization.
"""

from __future__ import annotations

import importlib
import math
import re
from collections.abc import Callable, Sequence

import torch
from torch import nn

from deai.core.registry import Registry
from deai.learn.errors import ModelError, UnknownName

__all__ = [
    "MAX_DIM",
    "MAX_KWARG_ITEMS",
    "MAX_PARAMS",
    "MODELS",
    "build_model",
    "check_model_kwargs",
    "count_params",
    "count_state",
    "image_shape",
]

MAX_PARAMS = 1 << 28  # 268M parameters built (a pretrained base); what travels is bounded by the task spec
MAX_DIM = 1 << 24  # a layer width, channel count, image side or vocabulary size
MAX_KWARG_ITEMS = 16  # e.g. hidden layers, LoRA target modules
_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")

MODELS: Registry[nn.Module] = Registry("model", UnknownName)
"""Built-in architectures by name; add one with ``@MODELS.register("name")`` on its ``nn.Module``."""


def image_shape(name: str, in_features: int, input_shape: Sequence[int] | None) -> tuple[int, int, int]:
    """``(C, H, W)`` of an image model's input: ``input_shape`` checked against ``in_features``, or by
    default a square one-channel image of ``in_features`` pixels."""
    if input_shape is None:
        side = math.isqrt(in_features)
        if side * side != in_features:
            raise ModelError(f"{name}: {in_features} features are not a square image; pass input_shape")
        return (1, side, side)
    if len(input_shape) != 3 or math.prod(int(s) for s in input_shape) != in_features:
        raise ModelError(f"{name}: input_shape {tuple(input_shape)} does not hold {in_features} features")
    c, h, w = (int(s) for s in input_shape)
    return (c, h, w)


def _import(path: str) -> Callable[..., nn.Module]:
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise ModelError(f"model import path {path!r} must look like 'package.module:ClassName'")
    try:
        obj = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ModelError(f"cannot import model {path!r}: {exc}") from exc
    if not (isinstance(obj, type) and issubclass(obj, nn.Module)):
        raise ModelError(f"{path!r} is not a torch.nn.Module subclass")
    return obj


def _dim(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_DIM


def _item(value: object) -> bool:
    """A list item: a dimension, a finite non-integer number or a short name (no bools, no zero)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return _dim(value)
    if isinstance(value, float):
        return math.isfinite(value) and abs(value) <= MAX_DIM
    return isinstance(value, str) and _NAME.match(value) is not None


def _scalar(value: object) -> bool:
    return value is None or isinstance(value, bool) or _item(value)


def check_model_kwargs(name: str, kwargs: dict) -> None:
    """Refuse keyword arguments of registry model ``name`` outside the rules of the module
    docstring (scalars, or lists of at most ``MAX_KWARG_ITEMS`` dimensions, floats or names)."""
    for key, value in kwargs.items():
        ok = isinstance(key, str) and _NAME.match(key) is not None
        ok = ok and (
            _scalar(value)
            or (isinstance(value, list | tuple) and len(value) <= MAX_KWARG_ITEMS and all(map(_item, value)))
        )
        if not ok:
            raise ModelError(
                f"model {name!r}: argument {str(key)[:40]!r} must be a number, a short name or a list of at"
                f" most {MAX_KWARG_ITEMS} of them, got {str(value)[:80]}"
            )


def _construct(
    factory: Callable[..., nn.Module], name: str, in_features: int, num_classes: int, kwargs: dict
):
    try:
        return factory(in_features, num_classes, **kwargs)
    except ModelError:
        raise
    # Arguments that passed the checks may still not fit together (a CNN's input_shape); whatever
    # the constructor raises on them is the caller's bad input, never a crash of the caller.
    except Exception as exc:
        raise ModelError(f"cannot build model {name!r} with {str(kwargs)[:200]}: {exc}") from exc


def count_params(name: str, in_features: int, num_classes: int, **kwargs) -> int:
    """The parameter count of the model, built on the ``meta`` device (no memory, no init)."""
    factory = _import(name) if ":" in name else MODELS.get(name)
    if ":" not in name:
        check_model_kwargs(name, kwargs)
    for what, value in (("in_features", in_features), ("num_classes", num_classes)):
        if not _dim(value):
            raise ModelError(f"model {name!r}: {what} must be an integer in [1, {MAX_DIM}], got {value!r}")
    with torch.device("meta"):
        model = _construct(factory, name, in_features, num_classes, kwargs)
    return sum(p.numel() for p in model.parameters())


def count_state(name: str, in_features: int, num_classes: int, *, buffers: bool = False, **kwargs) -> int:
    """The length of the model's state vector (trainable parameters plus floating-point buffers:
    what every update carries), built on the ``meta`` device; ``buffers=True``: how many of those
    values are buffers (the vector's last ones)."""
    factory = _import(name) if ":" in name else MODELS.get(name)
    if ":" not in name:
        check_model_kwargs(name, kwargs)
    with torch.device("meta"):
        model = _construct(factory, name, in_features, num_classes, kwargs)
    from deai.learn.training import buffer_size, state_size  # the state vector's one definition

    return buffer_size(model) if buffers else state_size(model)


def build_model(
    name: str,
    in_features: int,
    num_classes: int,
    *,
    seed: int | None = None,
    **kwargs,
) -> nn.Module:
    """Build a registered model (or ``"pkg.module:Class"``) in float32 on the CPU.

    The arguments are checked and the parameters counted (on the ``meta`` device) first: a model of
    more than :data:`MAX_PARAMS` parameters is refused before any memory is allocated (a constant,
    not an argument: ``kwargs`` may come from another party).
    With ``seed`` the initialization is reproducible and leaves the global RNG untouched.
    """
    n = count_params(name, in_features, num_classes, **kwargs)
    if n > MAX_PARAMS:
        raise ModelError(f"model {name!r} has {n:,} parameters, over the limit of {MAX_PARAMS:,}")
    factory = _import(name) if ":" in name else MODELS.get(name)
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        model = _construct(factory, name, in_features, num_classes, kwargs)
    return model.float()
