"""One huge row added to a colluding group: a numerical attack on distance-based rules."""

from __future__ import annotations

import math

import torch

from deai.learn.attacks.base import ATTACKS, Attack

__all__ = ["HugeRow"]


@ATTACKS.register("huge_row")
class HugeRow(Attack):
    """The first Byzantine sends ``mean(honest) + scale * std(honest)``; the others all send one
    colluding point, ``mean(honest) + z * std(honest)`` (coordinate-wise; with fewer than two
    honest updates ``std`` is taken as 1).

    The huge row is an obvious outlier; what it attacks is arithmetic. Pairwise distances computed
    by the Gram identity after centring on the mean (as deai did before) lose every honest distance
    to cancellation once one row is 1e4-1e5 times the honest spread, and Krum-type rules then pick
    at random, colluders included. Against exact distances the colluders stay as far from the
    honest updates as ``z`` puts them and are rejected. The huge row is clipped to
    ``finfo.max / (4 n)`` so the plain mean stays finite (an infinite row is simply refused).
    Omniscient: it reads the honest updates. No training.
    """

    trains = False

    def __init__(self, scale: float = 1e5, z: float = 3.0) -> None:
        if not (math.isfinite(scale) and scale > 0 and math.isfinite(z)):
            raise ValueError("huge_row: need a finite scale > 0 and a finite z")
        self.scale, self.z = float(scale), float(z)

    def craft(self, honest, own, num_byzantine, generator) -> torch.Tensor:
        mu = honest.mean(0)
        sd = honest.std(0) if honest.shape[0] > 1 else torch.ones_like(mu)
        out = (mu + self.z * sd).expand(num_byzantine, -1).clone()
        if num_byzantine > 0:
            limit = torch.finfo(out.dtype).max / (4 * (honest.shape[0] + num_byzantine))
            out[0] = (mu.double() + self.scale * sd.double()).clamp(-limit, limit).to(out.dtype)
        return out
