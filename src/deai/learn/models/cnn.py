"""A small convolutional network for small images (digits are ``(1, 8, 8)``), no batch norm."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from deai.learn.models.base import MODELS, image_shape

__all__ = ["SmallCNN"]


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
        c, h, w = image_shape("cnn", in_features, input_shape)
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
