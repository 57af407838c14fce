"""``dp_aggregate``: the central-DP aggregate of client updates (DP-FedAvg, McMahan et al. 2018):
clip each update to L2 norm ``clip``, sum, add Gaussian noise of std ``noise_multiplier * clip``
drawn from the job seed, divide by the fixed ``expected_count``. Inputs: ``n`` flat updates
``{"delta": [d]}``; output ``{"delta": [d]}``. Deterministic given the seed, so replicated executors
agree; the seed is fixed only when the round's updates are committed, so a provider cannot adapt
its update to the noise. Compressed updates (params ``compression`` and ``dim``,
:mod:`~deai.protocol.jobs.kinds.sent`) are checked and decompressed first: the clip bounds what
each provider sent, so the guarantee is unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from deai.protocol.jobs.compare import CompareRule
from deai.protocol.jobs.errors import InputMismatch
from deai.protocol.jobs.kinds.base import (
    KINDS,
    JobKind,
    Layout,
    Tensors,
    float_param,
    int_param,
    tensor_of,
)
from deai.protocol.jobs.kinds.sent import check_compression_params, compressed, decompress_input

__all__ = ["DPAggregate"]


@KINDS.register("dp_aggregate")
class DPAggregate(JobKind):
    rule = CompareRule.tolerance(rtol=1e-5, atol=1e-6)

    def check_params(self, params: Mapping[str, Any]) -> None:
        float_param(params, "clip", 1e-9, 1e9)
        float_param(params, "noise_multiplier", 0.0, 1e6)
        int_param(params, "expected_count", 1, 1 << 24)
        check_compression_params(params)

    def output_layout(self, inputs: Sequence[Tensors], params: Mapping[str, Any]) -> Layout:
        if not inputs:
            raise InputMismatch("dp_aggregate needs at least one update")
        if compressed(params):
            for i, upd in enumerate(inputs):
                decompress_input(upd, params, i)
            return {"delta": ((params["dim"],), torch.float32)}
        d = tensor_of(inputs, 0, "delta", "a flat update").shape
        for i in range(len(inputs)):
            t = tensor_of(inputs, i, "delta", "a flat update")
            if set(inputs[i]) != {"delta"} or t.dim() != 1 or t.shape != d or not t.is_floating_point():
                raise InputMismatch(f"update {i} is not a flat float vector of shape {tuple(d)}")
        return {"delta": (tuple(d), torch.float32)}

    def run(self, inputs: Sequence[Tensors], params: Mapping[str, Any], seed: int) -> Tensors:
        # Imported here: deai.learn.privacy loads Opacus (~1.5 s), which a node needs only for DP.
        from deai.learn.privacy.client_dp import ClientDP
        from deai.learn.privacy.errors import PrivacyError

        if compressed(params):
            stacked = torch.stack([decompress_input(u, params, i) for i, u in enumerate(inputs)])
        else:
            stacked = torch.stack([u["delta"].float() for u in inputs])
        dp = ClientDP(params["clip"], params["noise_multiplier"], "central", params["expected_count"])
        try:
            out = dp.aggregate(stacked, torch.Generator().manual_seed(seed))
        except PrivacyError as exc:
            raise InputMismatch(f"dp_aggregate refused the updates: {exc}") from exc
        return {"delta": out.float().contiguous()}
