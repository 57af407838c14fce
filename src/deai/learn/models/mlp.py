"""Fully connected models on flat features: an MLP and multinomial logistic regression.

Both flatten their input, so they also take images ``[B, C, H, W]``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import nn

from deai.learn.models.base import MODELS

__all__ = ["MLP", "LogReg"]


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
        return self.net(x.flatten(1))


@MODELS.register("logreg")
class LogReg(nn.Module):
    """Multinomial logistic regression: one linear layer on the features."""

    def __init__(self, in_features: int, num_classes: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))
