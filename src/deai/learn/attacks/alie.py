"""ALIE, "A Little Is Enough" (Baruch et al., NeurIPS 2019)."""

from __future__ import annotations

import math
from statistics import NormalDist

import torch

from deai.learn.attacks.base import ATTACKS, Attack

__all__ = ["ALIE", "alie_z"]


def alie_z(n: int, f: int) -> float:
    """The paper's largest safe shift: ``s = floor(n/2 + 1) - f``, ``z = Phi^-1((n - s) / n)``."""
    s = math.floor(n / 2 + 1) - f
    p = (n - s) / n
    return NormalDist().inv_cdf(min(max(p, 1e-6), 1 - 1e-6))


@ATTACKS.register("alie")
class ALIE(Attack):
    """Every Byzantine sends ``mean(honest) - z * std(honest)`` (coordinate-wise).

    Each coordinate stays within the honest spread, so median-, Krum- and distance-based rules keep
    it, yet all coordinates move the same way. ``z=None`` uses :func:`alie_z` for the round's n and f.
    Omniscient: it reads the honest updates. No training.
    """

    trains = False

    def __init__(self, z: float | None = None) -> None:
        self.z = z

    def craft(self, honest, own, num_byzantine, generator) -> torch.Tensor:
        z = alie_z(honest.shape[0] + num_byzantine, num_byzantine) if self.z is None else self.z
        mu = honest.mean(0)
        sd = honest.std(0) if honest.shape[0] > 1 else torch.zeros_like(mu)
        return (mu - z * sd).expand(num_byzantine, -1).clone()
