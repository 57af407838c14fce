"""A dense tail: the last values of a state vector travel uncompressed beside the compressed rest.

A model's state vector is its trainable parameters, then its floating-point buffers
(:func:`deai.learn.training.state_names`): batch-norm running means and variances. Those buffers are
statistics, not gradients: a top-k or 2-bit copy of a running variance's change is a wrong
variance, and one wrong variance breaks every activation after it (a ResNet with compressed
buffers stays at chance). They are also few (a few hundred values beside tens of thousands of
weights). So the network compresses the first ``d - tail`` values and sends the last ``tail``
exactly, as float32 under the key :data:`TAIL`.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from deai.learn.compression.compressor import Compressor
from deai.learn.compression.errors import BadCompressed

__all__ = ["TAIL", "decompress_with_tail", "tail_bytes"]

TAIL = "tail"
"""The key of the dense tail in a compressed update."""


def tail_bytes(tail: int) -> int:
    """An upper bound on the safetensors bytes the tail adds (data plus its header entry)."""
    return 4 * tail + 128


def decompress_with_tail(
    compressor: Compressor, tensors: Mapping[str, torch.Tensor], d: int, tail: int, *, seed: int | None = None
) -> torch.Tensor:
    """The dense float32 ``[d]`` vector of a compressed update whose last ``tail`` values travel
    dense: checks the tail (exact shape, float32, finite) and the compressed head like any input."""
    if tail == 0:
        return compressor.decompress(tensors, d, seed=seed)
    if not 0 < tail < d:
        raise BadCompressed(f"a dense tail of {tail} values does not fit a vector of {d}")
    t = tensors.get(TAIL)
    if not isinstance(t, torch.Tensor) or t.dtype != torch.float32 or tuple(t.shape) != (tail,):
        raise BadCompressed(f"the update must carry its last {tail} values as float32 {TAIL!r}")
    if not bool(torch.isfinite(t).all()):
        raise BadCompressed("the dense tail holds a non-finite value")
    head = compressor.decompress({k: v for k, v in tensors.items() if k != TAIL}, d - tail, seed=seed)
    return torch.cat([head, t])
