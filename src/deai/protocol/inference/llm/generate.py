"""Generation with a proof: a decode loop over a ``transformers`` causal LM that chooses each token
with the replayable sampler (:mod:`~deai.protocol.inference.llm.sampling`) and keeps each step's
last hidden state for the proof (:mod:`~deai.protocol.inference.llm.proof`).

:func:`generate` serves one request; :func:`generate_batch` serves several in one left-padded
batch (positions follow the attention mask, so a padded row computes what it would alone, up to
rounding). ``use_cache=False`` recomputes the whole sequence at each step (no KV cache): slower,
used by the calibration as one of the honest variations. The model must already be in the
request's precision (:func:`model_in`); a request is checked against the model's vocabulary and
positions before anything runs. Generation stops at the first stop id (kept as the answer's last
token) or after ``max_new_tokens``.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from deai.protocol.inference.llm.errors import BadRequest
from deai.protocol.inference.llm.proof import build_proof
from deai.protocol.inference.llm.request import Generation, GenerationRequest
from deai.protocol.inference.llm.sampling import choose, uniforms

__all__ = ["Decoded", "decode", "generate", "generate_batch", "model_dtype", "model_in", "model_limits"]

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def model_dtype(model: torch.nn.Module) -> str:
    """The precision name of ``model``'s parameters (``"float32"`` or ``"bfloat16"``)."""
    dt = next(model.parameters()).dtype
    for name, t in _DTYPES.items():
        if t == dt:
            return name
    raise BadRequest(f"models run in float32 or bfloat16, this one is {dt}")


def model_in(model: torch.nn.Module, dtype: str) -> torch.nn.Module:
    """``model`` in precision ``dtype`` (itself if it already is, else a converted copy), eval mode."""
    if dtype not in _DTYPES:
        raise BadRequest(f"unknown dtype {dtype!r}")
    if model_dtype(model) == dtype:
        return model.eval()
    return copy.deepcopy(model).to(_DTYPES[dtype]).eval()


def model_limits(model: torch.nn.Module) -> tuple[int, int | None]:
    """The model's vocabulary size and maximum positions (None if the config names none)."""
    cfg: Any = model.config
    vocab = int(model.get_output_embeddings().weight.shape[0])  # type: ignore[operator]
    pos = getattr(cfg, "max_position_embeddings", None) or getattr(cfg, "n_positions", None)
    return vocab, (int(pos) if pos else None)


@dataclass(frozen=True)
class Decoded:
    """A decode loop's result for one request: the tokens, the last hidden state of each step
    (float32 ``[n, hidden]``) and, when asked, each step's logits (float32 ``[n, V]``)."""

    tokens: tuple[int, ...]
    hidden: torch.Tensor
    logits: torch.Tensor | None


def _forward(model, ids, mask, past, use_cache):
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    if past is not None:
        ids, pos = ids[:, -1:], pos[:, -1:]
    out = model(
        input_ids=ids,
        attention_mask=mask,
        position_ids=pos,
        past_key_values=past,
        use_cache=use_cache,
        output_hidden_states=True,
        logits_to_keep=1,
    )
    return out.hidden_states[-1][:, -1].float(), out.logits[:, -1].float(), out.past_key_values


def decode(
    model: torch.nn.Module,
    requests: Sequence[GenerationRequest],
    *,
    use_cache: bool = True,
    keep_logits: bool = False,
    pad_id: int = 0,
) -> list[Decoded]:
    """Run the decode loop for ``requests`` in one left-padded batch (all in the model's precision).

    The token choice of row ``b`` at step ``t`` uses ``uniforms(seed_b)[t]`` -- replayable by a
    verifier. ``keep_logits`` also returns every step's logits (for calibration)."""
    if not requests:
        return []
    vocab, max_pos = model_limits(model)
    dtype = model_dtype(model)
    for r in requests:
        r.check(vocab, max_pos)
        if r.dtype != dtype:
            raise BadRequest(f"request asks for {r.dtype}, the model runs in {dtype}")
    dev = next(model.parameters()).device
    b = len(requests)
    longest = max(len(r.prompt) for r in requests)
    ids = torch.full((b, longest), pad_id, dtype=torch.int64)
    mask = torch.zeros((b, longest), dtype=torch.int64)
    for i, r in enumerate(requests):  # one row per request
        ids[i, longest - len(r.prompt) :] = torch.tensor(r.prompt)
        mask[i, longest - len(r.prompt) :] = 1
    ids, mask = ids.to(dev), mask.to(dev)
    steps = max(r.max_new_tokens for r in requests)
    us = [uniforms(r.seed, r.max_new_tokens) for r in requests]
    stops = [torch.tensor(r.stop or (-1,)) for r in requests]
    toks: list[list[int]] = [[] for _ in requests]
    hid: list[list[torch.Tensor]] = [[] for _ in requests]
    lgs: list[list[torch.Tensor]] = [[] for _ in requests]
    live = [True] * b
    past = None
    with torch.no_grad():
        for t in range(steps):
            h, logits, past_out = _forward(model, ids, mask, past, use_cache)
            past = past_out if use_cache else None
            nxt = torch.full((b,), pad_id, dtype=torch.int64)
            for i, r in enumerate(requests):  # per request: its own sampling rule and seed
                if not live[i]:
                    continue
                tok = int(choose(logits[i : i + 1].cpu(), r.sampling, us[i][t : t + 1])[0])
                toks[i].append(tok)
                hid[i].append(h[i].cpu())
                if keep_logits:
                    lgs[i].append(logits[i].cpu())
                nxt[i] = tok
                if bool((stops[i] == tok).any()) or len(toks[i]) >= r.max_new_tokens:
                    live[i] = False
            if not any(live):
                break
            ids = torch.cat([ids, nxt.unsqueeze(1).to(dev)], dim=1)
            mask = torch.cat([mask, torch.ones((b, 1), dtype=mask.dtype, device=dev)], dim=1)
    return [
        Decoded(tuple(toks[i]), torch.stack(hid[i]), torch.stack(lgs[i]) if keep_logits else None)
        for i in range(b)
    ]


def generate_batch(
    model: torch.nn.Module, requests: Sequence[GenerationRequest], *, use_cache: bool = True
) -> list[Generation]:
    """Serve ``requests`` in one padded batch; each answer carries its proof."""
    return [
        Generation(d.tokens, build_proof(d.hidden, r.dtype).to_bytes())
        for d, r in zip(decode(model, requests, use_cache=use_cache), requests, strict=True)
    ]


def generate(model: torch.nn.Module, request: GenerationRequest, *, use_cache: bool = True) -> Generation:
    """Serve one request: the generated tokens and their proof."""
    return generate_batch(model, [request], use_cache=use_cache)[0]
