"""A small ResNet with batch norm for small images (Fashion-MNIST ``(1, 28, 28)``, CIFAR-sized inputs).

He et al. (2016) basic blocks: ``conv3x3-BN-ReLU-conv3x3-BN`` plus a shortcut (a strided 1x1 conv
with BN where the shape changes), one stage per entry of ``widths`` (the first at full resolution,
each later one halving it), global average pooling and a linear head. With the defaults
(``widths=(16, 32, 64)``, one block per stage) it has about 78k parameters and reaches about 90%
test accuracy on Fashion-MNIST in a few epochs on a CPU.

Its batch-norm running statistics are buffers: they travel with the parameters in the model's
state vector (:func:`deai.learn.training.state_names`) and are aggregated like them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from deai.learn.errors import ModelError
from deai.learn.models.base import MODELS, image_shape

__all__ = ["BasicBlock", "ResNet"]


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and a residual connection."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


@MODELS.register("resnet")
class ResNet(nn.Module):
    """A small ResNet. ``input_shape`` is ``(C, H, W)`` (default: a square one-channel image of
    ``in_features``); ``widths`` the channels of each stage; ``blocks`` the blocks per stage."""

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        input_shape: Sequence[int] | None = None,
        widths: Sequence[int] = (16, 32, 64),
        blocks: int = 1,
    ) -> None:
        super().__init__()
        if not 1 <= len(widths) <= 4 or not 1 <= blocks <= 8:
            raise ModelError("resnet: 1 to 4 stages (widths) of 1 to 8 blocks")
        self.input_shape = image_shape("resnet", in_features, input_shape)
        self.stem = nn.Sequential(
            nn.Conv2d(self.input_shape[0], widths[0], 3, padding=1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(),
        )
        stages: list[nn.Module] = []
        c = widths[0]
        for i, w in enumerate(widths):
            for b in range(blocks):
                stages.append(BasicBlock(c, w, stride=2 if (i > 0 and b == 0) else 1))
                c = w
        self.stages = nn.Sequential(*stages)
        self.head = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.stages(self.stem(x.reshape(x.shape[0], *self.input_shape)))
        return self.head(F.adaptive_avg_pool2d(z, 1).flatten(1))
