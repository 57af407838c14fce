"""``skip_steps``: a trainer that skips every ``period``-th step (keeps the state) to save compute.

Its committed hashes are honest up to the first skipped step; the bisection lands there and the
referee's one step shows the state should have moved.
"""

from __future__ import annotations

from deai.protocol.jobs.cheaters.base import CHEATERS
from deai.protocol.jobs.cheaters.training import TrainingCheater
from deai.protocol.jobs.kinds.base import Tensors
from deai.protocol.jobs.trajectory import Trainer

__all__ = ["SkipSteps", "SkippingTrainer"]


class SkippingTrainer(Trainer):
    period = 4

    def next_state(self, state: Tensors, t: int) -> Tensors:
        return state if t % self.period == self.period - 1 else super().next_state(state, t)


@CHEATERS.register("skip_steps")
class SkipSteps(TrainingCheater):
    trainer_class = SkippingTrainer
