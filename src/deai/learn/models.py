"""Model registry: small reference models plus any ``torch.nn.Module`` given as an import path.

Every model takes flat float32 features ``[B, in_features]`` and returns logits ``[B, num_classes]``
(the CNN reshapes to its ``input_shape`` itself), so one training loop serves all of them.

- ``"mlp"``: ``hidden=(64,)`` ReLU layers;
- ``"cnn"``: two 3x3 conv layers and a linear head, for small images (digits are ``(1, 8, 8)``);
- ``"logreg"``: one linear layer (multinomial logistic regression);
- ``"pkg.module:ClassName"``: imported and called as ``ClassName(in_features, num_classes, **kwargs)``.

The registry's models hold parameters only (no buffers such as batch-norm statistics), so a model's
whole state is the flat parameter vector that training and aggregation exchange.
Pass ``seed`` to :func:`build_model` for a reproducible initialization.

Model arguments often come from another party (a task spec, a job's params, a model document), so
:func:`build_model` checks them before anything is allocated: a registry model's keyword arguments
are positive integers (at most :data:`MAX_DIM`) or lists of at most :data:`MAX_KWARG_ITEMS` of them,
and the model is first built on the ``meta`` device (no memory) to count its parameters, refusing
more than :data:`MAX_PARAMS`. Every refusal is a :class:`ModelError`.
"""

from __future__ import annotations

import importlib
import itertools
import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from deai.core.registry import Registry
from deai.learn.errors import ModelError, UnknownName

__all__ = [
    "MAX_DIM",
    "MAX_KWARG_ITEMS",
    "MAX_PARAMS",
    "MLP",
    "MODELS",
    "LogReg",
    "SmallCNN",
    "build_model",
    "check_model_kwargs",
    "count_params",
]

MAX_PARAMS = 1 << 25  # 33.5M float32 parameters: a 128 MiB checkpoint, half the update size cap
MAX_DIM = 1 << 24  # a layer width, channel count or image side
MAX_KWARG_ITEMS = 16  # e.g. hidden layers

MODELS: Registry[nn.Module] = Registry("model", UnknownName)
"""Built-in architectures by name; add one with ``@MODELS.register("name")`` on its ``nn.Module``."""


@MODELS.register("mlp")
class MLP(nn.Module):
    """Fully connected ReLU network."""

    def __init__(self, in_features: int, num_classes: int, hidden: Sequence[int] = (64,)) -> None:
        super().__init__()
        sizes = [in_features, *hidden]
        layers: list[nn.Module] = []
        for a, b in itertools.pairwise(sizes):
            layers += [nn.Linear(a, b), nn.ReLU()]
        layers.append(nn.Linear(sizes[-1], num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@MODELS.register("logreg")
class LogReg(nn.Module):
    """Multinomial logistic regression: one linear layer on the features."""

    def __init__(self, in_features: int, num_classes: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


@MODELS.register("cnn")
class SmallCNN(nn.Module):
    """conv3x3(c1) - ReLU - conv3x3(c2) - ReLU - maxpool2 - linear, for small images.

    ``input_shape`` is ``(C, H, W)``; by default a square single-channel image of ``in_features``.
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        input_shape: Sequence[int] | None = None,
        channels: Sequence[int] = (16, 32),
    ) -> None:
        super().__init__()
        if input_shape is None:
            side = math.isqrt(in_features)
            if side * side != in_features:
                raise ModelError(f"cnn: {in_features} features are not a square image; pass input_shape")
            input_shape = (1, side, side)
        c, h, w = (int(s) for s in input_shape)
        if c * h * w != in_features:
            raise ModelError(f"cnn: input_shape {tuple(input_shape)} does not hold {in_features} features")
        self.input_shape = (c, h, w)
        c1, c2 = channels
        self.features = nn.Sequential(
            nn.Conv2d(c, c1, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(c1, c2, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.head = nn.Linear(c2 * (h // 2) * (w // 2), num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.features(x.reshape(x.shape[0], *self.input_shape))
        return self.head(z.flatten(1))


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


def check_model_kwargs(name: str, kwargs: dict) -> None:
    """Refuse keyword arguments of registry model ``name`` that are not ``None``, a dimension
    (an integer in ``[1, MAX_DIM]``) or a list/tuple of at most ``MAX_KWARG_ITEMS`` dimensions."""
    for key, value in kwargs.items():
        ok = value is None or _dim(value)
        ok = ok or (
            isinstance(value, list | tuple) and len(value) <= MAX_KWARG_ITEMS and all(map(_dim, value))
        )
        if not ok:
            raise ModelError(
                f"model {name!r}: argument {str(key)[:40]!r} must be an integer in [1, {MAX_DIM}] or a list"
                f" of at most {MAX_KWARG_ITEMS} of them, got {str(value)[:80]}"
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
