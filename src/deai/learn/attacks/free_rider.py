"""Free riding: join the round, skip the training, send something cheap."""

from __future__ import annotations

import torch

from deai.learn.attacks.base import ATTACKS, Attack

__all__ = ["FreeRider"]


@ATTACKS.register("free_rider")
class FreeRider(Attack):
    """``mode="zero"`` sends a zero update (returns the global model unchanged); ``mode="noise"``
    sends Gaussian noise with the honest updates' per-coordinate spread, to look like an update.
    No training; it profits from the others' work (contribution scoring should pay it nothing)."""

    trains = False

    def __init__(self, mode: str = "zero") -> None:
        if mode not in ("zero", "noise"):
            raise ValueError("free_rider: mode must be 'zero' or 'noise'")
        self.mode = mode

    def craft(self, honest, own, num_byzantine, generator) -> torch.Tensor:
        d = honest.shape[1]
        if self.mode == "zero":
            return torch.zeros(num_byzantine, d, dtype=honest.dtype)
        sd = honest.std(0) if honest.shape[0] > 1 else honest.abs().mean(0)
        return torch.randn(num_byzantine, d, generator=generator, dtype=honest.dtype) * sd
