"""Sign flipping: send the negated (optionally scaled) honestly trained update."""

from __future__ import annotations

import torch

from deai.learn.attacks.base import ATTACKS, Attack

__all__ = ["SignFlip"]


@ATTACKS.register("sign_flip")
class SignFlip(Attack):
    """Send ``-scale * own_update``: a step up the loss instead of down."""

    def __init__(self, scale: float = 1.0) -> None:
        self.scale = scale

    def craft(self, honest, own, num_byzantine, generator) -> torch.Tensor:
        return -self.scale * super().craft(honest, own, num_byzantine, generator)
