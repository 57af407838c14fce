"""``wrong_answer``: the cheat that matters most to an inference user -- a plausible answer (right
shape, finite, confident) that is wrong: the logits of each row are rotated by one class, so the
predicted label always changes. On other kinds it perturbs every float output slightly.
"""

from __future__ import annotations

from deai.protocol.jobs.cheaters.base import CHEATERS
from deai.protocol.jobs.executor import Executor, JobView
from deai.protocol.jobs.kinds.base import Tensors

__all__ = ["WrongAnswer"]


@CHEATERS.register("wrong_answer")
class WrongAnswer(Executor):
    def produce(self, view: JobView) -> Tensors:
        out = self.compute(view.spec)
        if view.spec.kind != "infer":
            return {k: v * 1.05 + 0.05 if v.is_floating_point() else v for k, v in out.items()}
        return {"logits": out["logits"].roll(shifts=1, dims=1).contiguous()}
