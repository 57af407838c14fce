"""``score``: how much each update alone improves a checkpoint on validation data.

Inputs: ``[checkpoint, data, update_1, ..., update_n]``; ``data`` holds ``x`` (float ``[N, F]``) and
``y`` (int64 ``[N]``); each update is a flat delta or a parameter dict
(:func:`~deai.protocol.jobs.kinds.model.flat_update`). Params: the model.
Output: ``scores`` (float32 ``[n]``: validation loss of the checkpoint minus the loss of checkpoint +
update i; positive = helpful) and ``base_loss`` (float32 ``[1]``).

All ``n`` candidate models are evaluated in one batched call (``torch.func.vmap`` over parameter
sets), not a Python loop over providers.

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
import torch.nn.functional as F
from torch.func import functional_call, vmap

from deai.protocol.jobs.compare import CompareRule
from deai.protocol.jobs.errors import InputMismatch
from deai.protocol.jobs.kinds.base import KINDS, JobKind, Layout, Tensors, labelled_data
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
        labelled_data(inputs, 1, params, "validation")
        return {"scores": ((len(inputs) - 2,), torch.float32), "base_loss": ((1,), torch.float32)}

    def run(self, inputs: Sequence[Tensors], params: Mapping[str, Any], seed: int) -> Tensors:
        model = load_model(params, inputs[0])
        x, y = inputs[1]["x"].float(), inputs[1]["y"]
        named = dict(model.named_parameters())
        base = torch.cat([p.detach().reshape(-1) for p in named.values()])
        deltas = torch.stack([flat_update(model, u, i) for i, u in enumerate(inputs[2:])])
        # Row 0 is the checkpoint itself, evaluated in the same batched call as the candidates so a
        # zero update scores exactly 0.
        candidates = torch.cat([base[None], base + deltas])  # [n + 1, d]
        sizes = [p.numel() for p in named.values()]

        def loss_of(flat: torch.Tensor) -> torch.Tensor:
            parts = torch.split(flat, sizes)
            state = {k: v.view_as(named[k]) for k, v in zip(named, parts, strict=True)}
            return F.cross_entropy(functional_call(model, state, (x,)), y)

        losses = vmap(loss_of)(candidates)
        scores = losses[0] - losses[1:]
        return {"scores": scores.float().contiguous(), "base_loss": losses[:1].float().contiguous()}
