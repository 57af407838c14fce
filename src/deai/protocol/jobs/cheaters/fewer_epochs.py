"""``fewer_epochs``: a trainer that runs only the first ``fraction`` of the job's steps (fewer
passes over the data) and then reports the state unchanged for the rest.

Caught at the first step it did not run.
"""

from __future__ import annotations

from deai.protocol.jobs.cheaters.base import CHEATERS
from deai.protocol.jobs.cheaters.training import TrainingCheater
from deai.protocol.jobs.kinds.base import Tensors
from deai.protocol.jobs.trajectory import Trainer

__all__ = ["EarlyStopper", "FewerEpochs"]


class EarlyStopper(Trainer):
    fraction = 0.5

    def next_state(self, state: Tensors, t: int) -> Tensors:
        stop = max(1, int(self.program.steps * self.fraction))
        return state if t >= stop else super().next_state(state, t)


@CHEATERS.register("fewer_epochs")
class FewerEpochs(TrainingCheater):
    trainer_class = EarlyStopper
