"""``lazy``: skips the work. Returns the first input when it fits the output layout, else seeded noise.

It does not count as an execution (no compute was spent), which is the profit a lazy provider seeks.
"""

from __future__ import annotations

import torch

from deai.protocol.jobs.cheaters.base import CHEATERS
from deai.protocol.jobs.executor import Executor, JobView
from deai.protocol.jobs.kinds.base import Tensors, load_inputs

__all__ = ["Lazy"]


@CHEATERS.register("lazy")
class Lazy(Executor):
    def produce(self, view: JobView) -> Tensors:
        layout = self.layout(view.spec)
        first = load_inputs(self.store, view.spec)[0]
        if {k: (tuple(v.shape), v.dtype) for k, v in first.items()} == layout:
            return dict(first)
        gen = torch.Generator().manual_seed(view.spec.seed)
        return {k: torch.randn(shape, generator=gen).to(dtype) for k, (shape, dtype) in layout.items()}
