"""``forged_state``: a trainer that trains honestly but replaces the state once, a third of the way
in, with a forged one (e.g. a planted backdoor direction), then continues honestly from it.

Every hash before the forgery is honest; the bisection lands on the forged step.
"""

from __future__ import annotations

import torch

from deai.protocol.jobs.cheaters.base import CHEATERS
from deai.protocol.jobs.cheaters.training import TrainingCheater
from deai.protocol.jobs.kinds.base import Tensors
from deai.protocol.jobs.trajectory import Trainer

__all__ = ["ForgedState", "Forger"]


class Forger(Trainer):
    scale = 1e-2

    def next_state(self, state: Tensors, t: int) -> Tensors:
        out = super().next_state(state, t)
        if t != self.program.steps // 3:
            return out
        gen = torch.Generator().manual_seed(7)
        return {k: v + self.scale * torch.randn(v.shape, generator=gen) for k, v in out.items()}


@CHEATERS.register("forged_state")
class ForgedState(TrainingCheater):
    trainer_class = Forger
