"""Gaussian noise: send random vectors instead of updates."""

from __future__ import annotations

import torch

from deai.learn.attacks.base import ATTACKS, Attack

__all__ = ["GaussianNoise"]


@ATTACKS.register("gaussian_noise")
class GaussianNoise(Attack):
    """Each Byzantine sends ``N(0, sigma^2 I)``, independent draws; no training."""

    trains = False

    def __init__(self, sigma: float = 1.0) -> None:
        self.sigma = sigma

    def craft(self, honest, own, num_byzantine, generator) -> torch.Tensor:
        d = honest.shape[1]
        return self.sigma * torch.randn(num_byzantine, d, generator=generator, dtype=honest.dtype)
