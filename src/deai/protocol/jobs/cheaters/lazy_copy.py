"""``lazy_copy``: reuses commitments made for another job instead of training this one -- the
trajectory (hashes, root, final checkpoint) another executor committed for a sibling job of the same
task round (same checkpoint, another seed, so another batch order).

Leaf 0 matches (the same checkpoint); the state after step 0 is a step on other batches: caught at
step 0. (Copying a commitment of *this* job is the ``copycat``, stopped by commit-reveal.)
"""

from __future__ import annotations

import dataclasses

import torch

from deai.learn.training import batch_schedule
from deai.protocol.jobs.cheaters.base import CHEATERS
from deai.protocol.jobs.cheaters.training import TrainingCheater
from deai.protocol.jobs.kinds.train_steps import StepProgram
from deai.protocol.jobs.trajectory import Trainer

__all__ = ["LazyCopy"]


@CHEATERS.register("lazy_copy")
class LazyCopy(TrainingCheater):
    def make_trainer(self, program: StepProgram, every: int) -> Trainer:
        steps, b = program.schedule.shape
        sibling = batch_schedule(len(program.x), steps, b, torch.Generator().manual_seed(987_654_321))
        return Trainer(dataclasses.replace(program, schedule=sibling), every=every)
