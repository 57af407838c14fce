"""Token choice that a verifier can replay: greedy arg-max, or inverse-CDF sampling with the
request's seeded uniforms.

Token ``t`` of an answer is drawn with ``u_t``, the ``t``-th float64 uniform of a CPU
``torch.Generator`` seeded with the request's seed (the CPU generator gives the same stream on
every machine). The sampler filters the distribution (temperature, top-k, top-p), lays the kept
probabilities out in token-id order and returns the token whose CDF interval ``[lo, hi)`` holds
``u_t``. Ordering by token id (not by probability) makes the draw stable: a small change of the
logits moves the interval edges a little, so an honest replay with slightly different numbers
lands in the same interval unless ``u_t`` falls within that change of an edge. The verifier
measures exactly that distance (:func:`interval_distance`) and accepts it up to a calibrated bound.
"""

from __future__ import annotations

import torch

from deai.protocol.inference.llm.request import Sampling

__all__ = ["choose", "interval_distance", "probabilities", "uniforms"]


def uniforms(seed: int, n: int) -> torch.Tensor:
    """The request's ``n`` uniforms in [0, 1) (float64), one per generated token."""
    gen = torch.Generator(device="cpu").manual_seed(seed)
    return torch.rand(n, generator=gen, dtype=torch.float64)


def probabilities(logits: torch.Tensor, sampling: Sampling) -> torch.Tensor:
    """The filtered sampling distribution of each row of ``logits`` ``[n, V]`` (float64 ``[n, V]``;
    excluded tokens have probability 0). Only for ``sampling.temperature > 0``."""
    z = logits.to(torch.float64) / float(sampling.temperature)
    v = z.shape[-1]
    if 0 < sampling.top_k < v:
        kth = torch.topk(z, sampling.top_k, dim=-1).values[..., -1:]
        z = z.masked_fill(z < kth, float("-inf"))
    p = torch.softmax(z, dim=-1)
    if sampling.top_p < 1.0:
        sp, order = torch.sort(p, dim=-1, descending=True)
        before = torch.cumsum(sp, dim=-1) - sp  # mass strictly before each sorted token
        drop_sorted = before >= sampling.top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        p = p.masked_fill(drop, 0.0)
        p = p / p.sum(dim=-1, keepdim=True)
    return p


def choose(logits: torch.Tensor, sampling: Sampling, u: torch.Tensor) -> torch.Tensor:
    """The chosen token of each row of ``logits`` ``[n, V]`` (int64 ``[n]``): the arg-max when
    greedy, else the token whose id-ordered CDF interval holds ``u`` ``[n]``."""
    if sampling.greedy:
        return torch.argmax(logits, dim=-1)
    p = probabilities(logits, sampling)
    cdf = torch.cumsum(p, dim=-1)
    tok = torch.searchsorted(cdf, u.to(torch.float64).unsqueeze(-1), right=True).squeeze(-1)
    # u beyond the last edge (the cdf ends a rounding error below 1): the last kept token
    last = p.shape[-1] - 1 - torch.argmax(torch.flip(p > 0, dims=[-1]).to(torch.int8), dim=-1)
    return torch.minimum(tok, last)


def interval_distance(logits: torch.Tensor, sampling: Sampling, tokens: torch.Tensor, u: torch.Tensor):
    """How far ``u`` lies outside each claimed token's CDF interval under ``logits`` (float64
    ``[n]``; 0 inside). Greedy requests: the logit gap ``max - logit[token]`` instead."""
    if sampling.greedy:
        lg = logits.to(torch.float64)
        return lg.max(dim=-1).values - lg.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
    p = probabilities(logits, sampling)
    hi = torch.cumsum(p, dim=-1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
    lo = hi - p.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
    u = u.to(torch.float64)
    return torch.clamp(lo - u, min=0.0) + torch.clamp(u - hi, min=0.0)
