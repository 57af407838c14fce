"""``infer``: a model's forward pass on a batch -- the verified-inference job.

Inputs: ``[checkpoint, batch]`` where the batch blob holds ``x``: features (float ``[B, ...]`` of
``in_features`` values per sample: flat rows or images) or token windows (int64 ``[B, T]``,
``T <= in_features``, ids below ``num_classes``). Params: the model (see
:mod:`deai.protocol.jobs.kinds.model`). Output: ``{"logits": float32 [B, C]}`` -- class logits, or
for token windows the next-token logits at each window's last position (``C`` = the vocabulary;
the whole ``[B, T, V]`` tensor would be hundreds of MB for a real vocabulary).

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

__all__ = ["Infer", "check_batch_x"]


def check_batch_x(x: torch.Tensor, in_features: int, num_classes: int) -> None:
    """A batch the model takes: float32 ``[B >= 1, ...]`` of ``in_features`` finite values per
    sample, or int64 token ids ``[B >= 1, T]`` with ``1 <= T <= in_features`` below ``num_classes``.
    Raises :class:`InputMismatch` naming the fault."""
    f, c = in_features, num_classes
    if x.dtype == torch.int64:
        if x.dim() != 2 or not 1 <= x.shape[1] <= f or x.shape[0] == 0:
            raise InputMismatch(f"batch x of token ids must be [B, T <= {f}], got {tuple(x.shape)}")
        if int(x.min()) < 0 or int(x.max()) >= c:
            raise InputMismatch(f"batch token ids must be in [0, {c})")
        return
    if x.dtype != torch.float32 or x.dim() < 2 or x.shape[0] == 0:
        raise InputMismatch(
            f"batch x must be float32 [B, ...] (or int64 token ids), got {x.dtype} {tuple(x.shape)}"
        )
    if x[0].numel() != f:
        raise InputMismatch(f"batch x has {x[0].numel()} features per sample, the model takes {f}")
    if not bool(torch.isfinite(x).all()):
        raise InputMismatch("the batch holds non-finite values")


@KINDS.register("infer")
class Infer(JobKind):
    rule = CompareRule.tolerance(rtol=1e-4, atol=1e-5)

    def check_params(self, params: Mapping[str, Any]) -> None:
        check_model_params(params)

    def output_layout(self, inputs: Sequence[Tensors], params: Mapping[str, Any]) -> Layout:
        if len(inputs) != 2:
            raise InputMismatch(f"infer takes [checkpoint, batch], got {len(inputs)} inputs")
        model_layout(params)
        x = tensor_of(inputs, 1, "x", "the batch")
        check_batch_x(x, params["in_features"], params["num_classes"])
        return {"logits": ((x.shape[0], params["num_classes"]), torch.float32)}

    def run(self, inputs: Sequence[Tensors], params: Mapping[str, Any], seed: int) -> Tensors:
        from deai.learn.objectives import logits_of

        model = load_model(params, inputs[0])
        x = inputs[1]["x"]
        with torch.no_grad():
            logits = logits_of(model(x if x.dtype == torch.int64 else x.float()))
        if x.dtype == torch.int64:
            logits = logits[:, -1]  # the next token after each window
        return {"logits": logits.float().contiguous()}
