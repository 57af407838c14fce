"""The utility of candidate models on the task's validation data, many candidates at once.

:class:`ValidationUtility` maps ``[m, d]`` flat parameter vectors (the layout of
:func:`deai.learn.training.get_flat`) to ``m`` utilities in one batched call per ``chunk``
(``torch.func.vmap`` over :func:`torch.func.functional_call`), never a Python loop over candidates,
for models whose state is parameters only. Models with buffers (batch norm) or frozen weights
(LoRA), and language models, are evaluated one candidate after another in place (the model's
state is put back after each call); their cost is what the task's scoring budget bounds:
evaluations times validation samples.

- ``metric="neg_loss"`` (default): minus the mean cross-entropy (per token for language models).
  Smooth, so small contributions are still ranked; what the scorers use by default.
- ``metric="accuracy"``: the fraction classified correctly (steps of ``1/N``; coarse on small sets).

``evaluations`` counts candidate models evaluated, the unit of the scorers' sampling budgets.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call, vmap

from deai.learn.data import Dataset
from deai.learn.errors import DataError
from deai.learn.objectives import evaluate, logits_of, objective_for
from deai.learn.training import get_flat, set_flat, state_names

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
        self.objective = objective_for(data)
        tensors = {**dict(model.named_parameters()), **dict(model.named_buffers())}
        self._names = state_names(model)
        self._shapes = [tensors[k].shape for k in self._names]
        self._sizes = [tensors[k].numel() for k in self._names]
        self.dim = sum(self._sizes)
        self.evaluations = 0
        plain = not data.is_tokens and not any(True for _ in model.buffers())
        self._vectorized = plain and all(p.requires_grad for p in model.parameters())
        # evaluated in place (no copy of a large base) and put back after each call
        self._origin = None if self._vectorized else get_flat(model)

    def _one(self, flat: torch.Tensor) -> torch.Tensor:
        params = {
            k: v.view(s) for k, v, s in zip(self._names, flat.split(self._sizes), self._shapes, strict=True)
        }
        logits = logits_of(functional_call(self.model, params, (self.data.x,)))
        if self.metric == "neg_loss":
            return -self.objective.loss(logits, self.data.y)
        return (logits.argmax(-1) == self.data.y).to(logits.dtype).mean()

    def _each(self, params: torch.Tensor) -> torch.Tensor:
        assert self._origin is not None
        out = torch.zeros(params.shape[0])
        try:
            for i in range(params.shape[0]):
                set_flat(self.model, params[i])
                m = evaluate(self.model, self.data, batch_size=self.chunk)
                out[i] = -m["loss"] if self.metric == "neg_loss" else m["accuracy"]
        finally:
            set_flat(self.model, self._origin)
        return out

    @torch.no_grad()
    def __call__(self, params: torch.Tensor) -> torch.Tensor:
        """Utilities (float32 ``[m]``) of the ``[m, d]`` parameter vectors."""
        if params.dim() != 2 or params.shape[1] != self.dim:
            raise ValueError(f"candidates must be [m, {self.dim}], got {tuple(params.shape)}")
        self.evaluations += int(params.shape[0])
        if not self._vectorized:
            return self._each(params.float())
        self.model.eval()
        fn = vmap(self._one)
        out = [fn(params[i : i + self.chunk].float()) for i in range(0, params.shape[0], self.chunk)]
        return torch.cat(out) if out else torch.zeros(0)
