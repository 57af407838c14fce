"""Objectives: the loss a provider trains on and the metrics a model is judged by.

- ``"cross_entropy"``: classification; ``model(x)`` gives logits ``[B, C]`` for labels ``y [B]``;
  metrics ``accuracy`` and ``loss`` (mean cross-entropy).
- ``"next_token"``: language modelling; ``model(x)`` gives logits ``[B, T, V]`` for token windows
  ``x [B, T]`` and next-token targets ``y [B, T]``; metrics ``loss`` (mean cross-entropy per token),
  ``perplexity`` (``exp(loss)``) and ``accuracy`` (next-token top-1).

:func:`objective_for` picks the objective a dataset needs (token windows → ``next_token``, labelled
features → ``cross_entropy``), and checks a requested one against it. A model may also return an
object with a ``logits`` attribute (a Hugging Face output); :func:`logits_of` unwraps it.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from deai.core.registry import Registry
from deai.learn.data import Dataset
from deai.learn.errors import DataError, UnknownName

__all__ = ["LOSSES", "Objective", "evaluate", "logits_of", "objective_for"]


def logits_of(output: Any) -> torch.Tensor:
    """The logits tensor of a model's output (a tensor, or an object with ``.logits``)."""
    return output if isinstance(output, torch.Tensor) else output.logits


class Objective(ABC):
    """A training loss and evaluation metrics for one kind of data."""

    name: str = ""
    tokens: bool = False  # does it take token windows (True) or labelled features (False)?

    @abstractmethod
    def loss(self, logits: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        """The loss of ``logits`` against targets ``y`` (``reduction="none"``: one value per sample)."""

    @abstractmethod
    def correct(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """How many predictions are right (summed over the batch)."""

    def targets(self, y: torch.Tensor) -> int:
        """How many predictions a batch of targets holds (samples, or tokens)."""
        return int(y.numel())

    def metrics(self, loss: float, correct: float) -> dict[str, float]:
        return {"accuracy": correct, "loss": loss}


LOSSES: Registry[Objective] = Registry("loss", UnknownName, stamp="name")
"""Objectives by loss name."""


@LOSSES.register("cross_entropy")
class CrossEntropy(Objective):
    """Classification: mean cross-entropy of ``[B, C]`` logits against labels ``[B]``."""

    def loss(self, logits: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        return F.cross_entropy(logits, y, reduction=reduction)

    def correct(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (logits.argmax(-1) == y).sum()


@LOSSES.register("next_token")
class NextToken(Objective):
    """Language modelling: mean cross-entropy per token of ``[B, T, V]`` logits against ``[B, T]``."""

    tokens = True

    def loss(self, logits: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        per_token = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none").view_as(y)
        if reduction == "none":
            return per_token.mean(1)  # one value per window
        return per_token.mean() if reduction == "mean" else per_token.sum()

    def correct(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (logits.argmax(-1) == y).sum()

    def metrics(self, loss: float, correct: float) -> dict[str, float]:
        return {"accuracy": correct, "loss": loss, "perplexity": math.exp(min(loss, 80.0))}


def objective_for(data: Dataset, loss: str | None = None) -> Objective:
    """The objective for ``data``; with ``loss`` (a :data:`LOSSES` name, ``"auto"`` or ``None``),
    check it fits the data."""
    auto = NextToken() if data.is_tokens else CrossEntropy()
    if loss in (None, "auto"):
        return auto
    assert loss is not None
    chosen = LOSSES.get(loss)()
    if chosen.tokens != data.is_tokens:
        kind = "token windows" if data.is_tokens else "labelled features"
        raise DataError(f"loss {loss!r} does not fit {kind}; use {auto.name!r}")
    return chosen


@torch.no_grad()
def evaluate(
    model: nn.Module, data: Dataset, batch_size: int = 2048, *, loss: str | None = None
) -> dict[str, float]:
    """The objective's metrics of ``model`` on ``data`` (eval mode): ``accuracy`` and ``loss``, and
    ``perplexity`` for token windows. ``batch_size`` counts samples (windows for token data)."""
    if len(data) == 0:
        raise DataError("cannot evaluate on an empty dataset")
    objective = objective_for(data, loss)
    model.eval()
    total, correct, count = 0.0, 0.0, 0
    for i in range(0, len(data), batch_size):
        x, y = data.x[i : i + batch_size], data.y[i : i + batch_size]
        logits = logits_of(model(x))
        total += float(objective.loss(logits, y, reduction="sum"))
        correct += float(objective.correct(logits, y))
        count += objective.targets(y)
    return objective.metrics(total / count, correct / count)
