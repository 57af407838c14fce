"""``score``: how much each update alone improves a checkpoint on validation data.

Inputs: ``[checkpoint, data, update_1, ..., update_n]``; ``data`` holds ``x`` and ``y``
(:func:`~deai.protocol.jobs.kinds.base.dataset_input`); each update is a flat delta or a dict
(:func:`~deai.protocol.jobs.kinds.model.flat_update`). Params: the model.
Output: ``scores`` (float32 ``[n]``: validation loss of the checkpoint minus the loss of checkpoint +
update i; positive = helpful) and ``base_loss`` (float32 ``[1]``).

The candidates are evaluated by :class:`deai.learn.scoring.ValidationUtility` (the utility the
scorers use): one batched call (``torch.func.vmap``) for models whose state is parameters only.

**A library kind, not what the network runs:** a network task scores its round with
``contribution_score`` (:mod:`deai.protocol.jobs.kinds.contribution_score`: LOO, GTG-Shapley, RONI
from :mod:`deai.learn.scoring`); ``score`` is calibrated by ``benchmarks/verification.py`` and can be
registered as a job by anyone.

Comparison: tolerance (a loss is a sum of matmul outputs; see ``docs/verification.md``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from deai.learn.scoring import ValidationUtility
from deai.learn.training import get_flat
from deai.protocol.jobs.compare import CompareRule
from deai.protocol.jobs.errors import InputMismatch
from deai.protocol.jobs.kinds.base import KINDS, JobKind, Layout, Tensors, dataset_input
from deai.protocol.jobs.kinds.model import check_model_params, flat_update, load_model, model_layout

__all__ = ["Score"]


@KINDS.register("score")
class Score(JobKind):
    rule = CompareRule.tolerance(rtol=1e-4, atol=1e-5)

    def check_params(self, params: Mapping[str, Any]) -> None:
        check_model_params(params)

    def output_layout(self, inputs: Sequence[Tensors], params: Mapping[str, Any]) -> Layout:
        if len(inputs) < 3:
            raise InputMismatch("score takes [checkpoint, data, update_1, ...] with at least one update")
        model_layout(params)
        dataset_input(inputs, 1, params, "validation")
        return {"scores": ((len(inputs) - 2,), torch.float32), "base_loss": ((1,), torch.float32)}

    def run(self, inputs: Sequence[Tensors], params: Mapping[str, Any], seed: int) -> Tensors:
        model = load_model(params, inputs[0])
        base = get_flat(model)
        deltas = torch.stack([flat_update(model, u, i) for i, u in enumerate(inputs[2:])])
        # Row 0 is the checkpoint itself, evaluated in the same batched call as the candidates so a
        # zero update scores exactly 0.
        candidates = torch.cat([base[None], base + deltas])  # [n + 1, d]
        losses = -ValidationUtility(model, dataset_input(inputs, 1, params, "validation"))(candidates)
        scores = losses[0] - losses[1:]
        return {"scores": scores.float().contiguous(), "base_loss": losses[:1].float().contiguous()}
