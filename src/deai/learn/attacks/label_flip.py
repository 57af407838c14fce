"""Label flipping: train honestly on labels mapped ``y -> C - 1 - y``."""

from __future__ import annotations

import torch

from deai.learn.attacks.base import ATTACKS, Attack
from deai.learn.data import Dataset

__all__ = ["LabelFlip"]


@ATTACKS.register("label_flip")
class LabelFlip(Attack):
    """Data poisoning: every label ``y`` becomes ``num_classes - 1 - y``; the update is sent as trained."""

    kind = "data"

    def poison(self, data: Dataset, generator: torch.Generator) -> Dataset:
        return data.replace(y=(data.num_classes - 1 - data.y).contiguous())
