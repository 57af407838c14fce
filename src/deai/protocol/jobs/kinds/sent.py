"""Updates as they were sent: dense flat deltas, or compressed ones the job decompresses.

A task with compression (``TaskSpec.compression``, :mod:`deai.learn.compression`) has its providers
send compressed updates; the jobs that take updates (``aggregate``, ``dp_aggregate``,
``contribution_score``) then carry the params ``compression`` (the compressor spec), ``dim`` (the
state vector's length ``d``) and ``tail`` (how many of its last values, the batch-norm statistics,
travel dense: :mod:`deai.learn.compression.tail`; default 0). Each update input is checked field by field
(:func:`deai.learn.compression.check_compressed`: keys, dtypes, shapes against ``d`` and the spec's
ratio, index order and range, code range, finite bounded scales) and decompressed, deterministically:
every executor rebuilds the same dense float32 vectors, so the verified job re-executes bit-exactly
and the scores are computed on what was actually sent. Without those params an update is the dense
``{"delta": [d]}`` of before.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from deai.learn.errors import LearnError
from deai.protocol.jobs.errors import BadJobSpec, InputMismatch
from deai.protocol.jobs.kinds.base import LazyInput, Tensors, int_param

__all__ = ["MAX_DIM", "check_compression_params", "compressed", "decompress_input"]

MAX_DIM = 1 << 25  # the longest state vector a compressed update may claim (2x the task cap)


def compressed(params: Mapping[str, Any]) -> bool:
    """Whether the job's update inputs are compressed (``params.compression`` present)."""
    return "compression" in params


def check_compression_params(params: Mapping[str, Any]) -> None:
    """``compression`` (a compressor spec) and ``dim``, when present, are well formed."""
    if not compressed(params):
        return
    from deai.learn.compression import get_compressor

    spec = params["compression"]
    if not isinstance(spec, str) or len(spec) > 512:
        raise BadJobSpec("params.compression must be a compressor spec of at most 512 characters")
    try:
        get_compressor(spec)
    except (LearnError, TypeError, ValueError) as exc:
        raise BadJobSpec(f"params.compression: {exc}") from exc
    dim = int_param(params, "dim", 1, MAX_DIM)
    int_param(params, "tail", 0, dim - 1, default=0)


def decompress_input(update: Tensors, params: Mapping[str, Any], index: int) -> torch.Tensor:
    """Input update ``index`` as a dense float32 ``[dim]`` vector: decompressed after its checks."""
    from deai.learn.compression import decompress_with_tail, get_compressor

    if isinstance(update, LazyInput):
        raise InputMismatch(f"update {index}: a compressed update is loaded whole, not streamed")
    try:
        comp = get_compressor(params["compression"])
        return decompress_with_tail(comp, dict(update), params["dim"], params.get("tail", 0))
    except (LearnError, ValueError) as exc:
        raise InputMismatch(f"update {index} refused: {exc}") from exc
