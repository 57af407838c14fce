"""The utility of candidate models on the task's validation data, many candidates at once.

:class:`ValidationUtility` maps ``[m, d]`` flat parameter vectors (the layout of
:func:`deai.learn.training.get_flat`) to ``m`` utilities in one batched call per ``chunk``
(``torch.func.vmap`` over :func:`torch.func.functional_call`), never a Python loop over candidates.

- ``metric="neg_loss"`` (default): minus the mean cross-entropy. Smooth, so small contributions
  are still ranked; what the scorers use by default.
- ``metric="accuracy"``: the fraction classified correctly (steps of ``1/N``; coarse on small sets).

``evaluations`` counts candidate models evaluated, the unit of the scorers' sampling budgets.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call, vmap
from torch.nn import functional as F

from deai.learn.data import Dataset
from deai.learn.errors import DataError

__all__ = ["METRICS", "ValidationUtility"]

METRICS = ("neg_loss", "accuracy")


class ValidationUtility:
    """Utilities of flat parameter vectors of ``model`` on ``data`` (see the module docstring)."""

    def __init__(
        self, model: nn.Module, data: Dataset, *, metric: str = "neg_loss", chunk: int = 256
    ) -> None:
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
        if len(data) == 0:
            raise DataError("validation data is empty")
        if chunk < 1:
            raise ValueError("chunk must be >= 1")
        self.model, self.data, self.metric, self.chunk = model, data, metric, chunk
        named = list(model.named_parameters())
        self._names = [k for k, _ in named]
        self._shapes = [p.shape for _, p in named]
        self._sizes = [p.numel() for _, p in named]
        self.dim = sum(self._sizes)
        self.evaluations = 0

    def _one(self, flat: torch.Tensor) -> torch.Tensor:
        params = {
            k: v.view(s) for k, v, s in zip(self._names, flat.split(self._sizes), self._shapes, strict=True)
        }
        logits = functional_call(self.model, params, (self.data.x,))
        if self.metric == "neg_loss":
            return -F.cross_entropy(logits, self.data.y)
        return (logits.argmax(1) == self.data.y).to(logits.dtype).mean()

    @torch.no_grad()
    def __call__(self, params: torch.Tensor) -> torch.Tensor:
        """Utilities (float32 ``[m]``) of the ``[m, d]`` parameter vectors."""
        if params.dim() != 2 or params.shape[1] != self.dim:
            raise ValueError(f"candidates must be [m, {self.dim}], got {tuple(params.shape)}")
        self.model.eval()
        fn = vmap(self._one)
        out = [fn(params[i : i + self.chunk].float()) for i in range(0, params.shape[0], self.chunk)]
        self.evaluations += int(params.shape[0])
        return torch.cat(out) if out else torch.zeros(0)
