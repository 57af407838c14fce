"""``stale_checkpoint``: a trainer that starts from a perturbed (or stale) copy of the job's
checkpoint while committing the true checkpoint's hash as leaf 0 (a false leaf 0 loses at once).

Its state after step 0 is a step from the wrong start: caught at step 0.
"""

from __future__ import annotations

import torch

from deai.protocol.jobs.cheaters.base import CHEATERS
from deai.protocol.jobs.cheaters.training import TrainingCheater
from deai.protocol.jobs.kinds.base import Tensors
from deai.protocol.jobs.trajectory import Trainer

__all__ = ["StaleCheckpoint", "StaleStarter"]


class StaleStarter(Trainer):
    scale = 1e-2

    def start(self, initial: Tensors) -> Tensors:
        gen = torch.Generator().manual_seed(99)
        return {k: v + self.scale * torch.randn(v.shape, generator=gen) for k, v in initial.items()}


@CHEATERS.register("stale_checkpoint")
class StaleCheckpoint(TrainingCheater):
    trainer_class = StaleStarter
