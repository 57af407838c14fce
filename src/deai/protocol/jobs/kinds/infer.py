"""``infer``: a model's forward pass on a batch -- the verified-inference job.

Inputs: ``[checkpoint, batch]`` where the batch blob holds ``x`` (float ``[B, in_features]``).
Params: the model (see :mod:`deai.protocol.jobs.kinds.model`). Output: ``{"logits": float32 [B, C]}``.

Comparison: tolerance. A matmul's summation order depends on the BLAS kernel and thread count, so
honest hosts differ in the last bits; the calibrated bound is in ``docs/verification.md``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from deai.protocol.jobs.compare import CompareRule
from deai.protocol.jobs.errors import InputMismatch
from deai.protocol.jobs.kinds.base import KINDS, JobKind, Layout, Tensors, tensor_of
from deai.protocol.jobs.kinds.model import check_model_params, load_model, model_layout

__all__ = ["Infer"]


@KINDS.register("infer")
class Infer(JobKind):
    rule = CompareRule.tolerance(rtol=1e-4, atol=1e-5)

    def check_params(self, params: Mapping[str, Any]) -> None:
        check_model_params(params)

    def output_layout(self, inputs: Sequence[Tensors], params: Mapping[str, Any]) -> Layout:
        if len(inputs) != 2:
            raise InputMismatch(f"infer takes [checkpoint, batch], got {len(inputs)} inputs")
        model_layout(params)
        x = tensor_of(inputs, 1, "x", "the batch features")
        if x.dim() != 2 or x.shape[1] != params["in_features"] or not x.is_floating_point():
            raise InputMismatch(f"batch x must be float [B, {params['in_features']}], got {tuple(x.shape)}")
        return {"logits": ((x.shape[0], params["num_classes"]), torch.float32)}

    def run(self, inputs: Sequence[Tensors], params: Mapping[str, Any], seed: int) -> Tensors:
        model = load_model(params, inputs[0])
        return {"logits": model(inputs[1]["x"].float()).float().contiguous()}
