"""``other_data``: a trainer that trains on data of its own (seeded noise features, random labels)
instead of the task's -- cheaper to hold, or poisoned -- in the job's batch order.

Its state after step 0 already differs from a step on the task's batch: caught at step 0.
"""

from __future__ import annotations

import dataclasses

import torch

from deai.protocol.jobs.cheaters.base import CHEATERS
from deai.protocol.jobs.cheaters.training import TrainingCheater
from deai.protocol.jobs.kinds.train_steps import StepProgram
from deai.protocol.jobs.trajectory import Trainer

__all__ = ["OtherData"]


@CHEATERS.register("other_data")
class OtherData(TrainingCheater):
    def make_trainer(self, program: StepProgram, every: int) -> Trainer:
        gen = torch.Generator().manual_seed(1234)
        x = program.x
        if x.is_floating_point():
            fake_x = torch.randn(x.shape, generator=gen)
        else:
            fake_x = torch.randint(0, int(x.max()) + 1, x.shape, generator=gen)
        fake_y = torch.randint(0, int(program.y.max()) + 1, program.y.shape, generator=gen)
        return Trainer(dataclasses.replace(program, x=fake_x, y=fake_y), every=every)
