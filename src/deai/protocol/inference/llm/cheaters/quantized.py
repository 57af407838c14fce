"""``quantized_int8`` and ``quantized_4bit``: the real model with its linear weights rounded to
int8 (symmetric, per output channel) or to 4 bits (symmetric, per group of 32 inputs), then run in
the request's precision -- what a host saving memory or bandwidth would serve. The output head is
kept (it is often tied to the embeddings)."""

from __future__ import annotations

import torch

from deai.protocol.inference.llm.cheaters.base import LLM_CHEATERS, LLMHost, copy_model

__all__ = ["Quantized4bit", "QuantizedInt8", "quantize_weight"]


def quantize_weight(w: torch.Tensor, bits: int, group: int | None) -> torch.Tensor:
    """``w`` ``[out, in]`` rounded to a symmetric ``bits``-bit grid per output row (``group=None``)
    or per group of ``group`` inputs, returned in ``w``'s dtype."""
    qmax = 2 ** (bits - 1) - 1
    x = w.detach().float()
    if group is not None and x.shape[1] % group == 0:
        x = x.reshape(x.shape[0], -1, group)
    scale = x.abs().amax(dim=-1, keepdim=True).clamp_min(1e-12) / qmax
    q = torch.round(x / scale).clamp(-qmax - 1, qmax) * scale
    return q.reshape(w.shape).to(w.dtype)


class _Quantized(LLMHost):
    bits = 8
    group: int | None = None

    def derive(self, model: torch.nn.Module) -> torch.nn.Module:
        q = copy_model(model)
        head = q.get_output_embeddings()  # type: ignore[operator]
        with torch.no_grad():
            for mod in q.modules():
                if isinstance(mod, torch.nn.Linear) and mod is not head:
                    mod.weight.copy_(quantize_weight(mod.weight, self.bits, self.group))
        return q


@LLM_CHEATERS.register("quantized_int8")
class QuantizedInt8(_Quantized):
    bits = 8


@LLM_CHEATERS.register("quantized_4bit")
class Quantized4bit(_Quantized):
    bits = 4
    group = 32
