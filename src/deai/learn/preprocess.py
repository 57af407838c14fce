"""The preprocessing a task declares: how raw features become the model's input.

Every party that feeds data to a task's model applies the same :class:`Preprocessing`, read from
the task spec: data providers to their own raw files before training, the task creator to the
validation and scoring data it publishes, anyone evaluating or serving the model to its inputs.
Nobody needs statistics of data they do not hold: the creator fixes them (from its public or
validation data) when it writes the spec, and they are part of the spec's digest.

Kinds:

- ``none``: the features are used as they are (token windows, data already in model space);
- ``standardize``: ``x' = (x - mean[g]) / std[g]``, where the ``F`` features of a sample (in
  row-major order: ``C*H*W`` for images) are cut into ``k = len(mean)`` equal contiguous groups:
  ``k = F`` is per feature (tables), ``k = C`` per channel (images), ``k = 1`` one scale for all
  (e.g. ``mean: [0], std: [255]`` turns byte pixels into ``[0, 1]``).

Statistics are finite, ``std`` at least :data:`MIN_STD`, at most :data:`MAX_STAT` in magnitude; ``k``
divides ``F``. :meth:`Preprocessing.fit` computes per-feature statistics on a dataset (the same
fit as :class:`deai.learn.data.Standardizer`, which applies them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from deai.learn.errors import DataError

if TYPE_CHECKING:  # torch loads only when data is transformed: a spec parses without it
    import torch

    from deai.learn.data import Dataset, Standardizer

__all__ = ["KINDS", "MAX_STAT", "MIN_STD", "Preprocessing"]

KINDS = ("none", "standardize")
MAX_STAT = 1e12
MIN_STD = 1e-12


def _floats(name: str, value: Any) -> list[float]:
    if not isinstance(value, list | tuple):
        raise DataError(f"preprocessing.{name} must be a list of numbers")
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise DataError(f"preprocessing.{name} must hold finite numbers, got {str(v)[:40]}")
        if abs(v) > MAX_STAT:
            raise DataError(f"preprocessing.{name}: {v} is beyond {MAX_STAT:g} in magnitude")
        out.append(float(v))
    return out


@dataclass(frozen=True)
class Preprocessing:
    """What raw features go through before the model sees them (see the module docstring)."""

    kind: str = "none"
    mean: list[float] = field(default_factory=list)
    std: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise DataError(f"preprocessing.kind must be one of {KINDS}, got {str(self.kind)[:40]!r}")
        object.__setattr__(self, "mean", _floats("mean", self.mean))
        object.__setattr__(self, "std", _floats("std", self.std))
        if self.kind == "none":
            if self.mean or self.std:
                raise DataError("preprocessing kind 'none' takes no mean or std")
            return
        if not self.mean or len(self.mean) != len(self.std):
            raise DataError("preprocessing.mean and std must be non-empty lists of the same length")
        if min(self.std) < MIN_STD:
            raise DataError(f"preprocessing.std must be at least {MIN_STD:g}")

    @classmethod
    def from_json(cls, value: Any) -> Preprocessing:
        if not isinstance(value, dict) or set(value) - {"kind", "mean", "std"}:
            raise DataError("preprocessing must be an object with kind, mean and std")
        return cls(**value)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def fit(cls, data: Dataset) -> Preprocessing:
        """Per-feature standardization fitted on ``data`` (constant features keep std 1)."""
        from deai.learn.data import Standardizer

        s = Standardizer.fit(data)
        return cls("standardize", s.mean.flatten().tolist(), s.std.flatten().tolist())

    def check(self, in_features: int) -> None:
        """Raise :class:`DataError` unless this applies to samples of ``in_features`` features."""
        k = len(self.mean)
        if k and (k > in_features or in_features % k):
            raise DataError(
                f"preprocessing has {k} groups of statistics; they must divide the {in_features} features"
            )

    def standardizer(self, shape: tuple[int, ...]) -> Standardizer:
        """The statistics spread over samples of ``shape`` (``kind`` must be ``standardize``)."""
        import torch

        from deai.learn.data import Standardizer

        f = int(math.prod(shape))
        self.check(f)
        per = f // len(self.mean)
        mean = torch.tensor(self.mean, dtype=torch.float32).repeat_interleave(per).reshape(shape)
        std = torch.tensor(self.std, dtype=torch.float32).repeat_interleave(per).reshape(shape)
        return Standardizer(mean, std)

    def apply(self, data: Dataset) -> Dataset:
        """``data`` with its features in model space (the same dataset for ``none``)."""
        if self.kind == "none":
            return data
        if data.is_tokens:
            raise DataError("token windows take no standardization (preprocessing kind must be 'none')")
        return self.standardizer(tuple(data.x.shape[1:]))(data)

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        """Raw float features ``x`` ``[N, ...]`` in model space (e.g. inference inputs)."""
        if self.kind == "none":
            return x
        s = self.standardizer(tuple(x.shape[1:]))
        return ((x.float() - s.mean) / s.std).contiguous()
