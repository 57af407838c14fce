"""``fake_result``: computes the job, then uploads a doctored output (biased by a few percent).

The shape, dtype and finiteness are right, so only comparison with an honest replica catches it --
the case of a provider that wants to steer an aggregate or a score.
"""

from __future__ import annotations

from deai.protocol.jobs.cheaters.base import CHEATERS
from deai.protocol.jobs.executor import Executor, JobView
from deai.protocol.jobs.kinds.base import Tensors

__all__ = ["FakeResult"]


@CHEATERS.register("fake_result")
class FakeResult(Executor):
    bias = 0.05

    def produce(self, view: JobView) -> Tensors:
        out = self.compute(view.spec)
        return {k: v * (1 + self.bias) + self.bias if v.is_floating_point() else v for k, v in out.items()}
