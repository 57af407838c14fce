"""IPM, inner-product manipulation (Xie et al., UAI 2019)."""

from __future__ import annotations

import torch

from deai.learn.attacks.base import ATTACKS, Attack

__all__ = ["IPM"]


@ATTACKS.register("ipm")
class IPM(Attack):
    """Every Byzantine sends ``-epsilon * mean(honest)``: a small vector whose inner product with the
    true update is negative. Small ``epsilon`` (0.1) hides near the origin where Krum and median
    pick it; large ``epsilon`` overwhelms the mean. Omniscient; no training."""

    trains = False

    def __init__(self, epsilon: float = 0.1) -> None:
        self.epsilon = epsilon

    def craft(self, honest, own, num_byzantine, generator) -> torch.Tensor:
        return (-self.epsilon * honest.mean(0)).expand(num_byzantine, -1).clone()
