"""The downlink: the round's global update sent compressed, so providers need not download the model.

Without it every provider downloads the whole new checkpoint each round, which dominates a
compressed round's traffic (an update compressed 150x up, the full model down). With
``TaskSpec.global_compression`` (a :mod:`deai.learn.compression` spec), the coordinator compresses
the round's global step ``new - base`` through its own error-feedback residual (what compression
drops is applied in later rounds, as on the providers' side) and the *applied* checkpoint is
``base + decompress(sent)``: the model everyone trains from is exactly what the compressed update
reconstructs. A provider holding the previous checkpoint downloads the compressed update (the round
view's ``patch``), rebuilds the checkpoint with :func:`apply_patch` and checks it against the
round's checkpoint digest; anything else (no previous checkpoint, a mismatch) falls back to the
full download. Compression and decompression are deterministic (the seed derives from the task and
round), so anyone can recompute every checkpoint from the previous one and the posted update.

What it costs: the global model lags the uncompressed aggregate by the residual; the strategy's
server state (momentum, Adam moments) is computed from the uncompressed step.
"""

from __future__ import annotations

import torch

from deai.core.encoding import sha256, sha256_hex
from deai.core.errors import DeaiError
from deai.core.tensorio import from_safetensors, to_safetensors
from deai.learn.training import get_flat, set_flat
from deai.protocol.task.errors import BadUpdate
from deai.protocol.task.model import checkpoint_bytes, dense_tail, load_checkpoint
from deai.protocol.task.spec import TaskSpec

__all__ = ["GlobalStep", "apply_patch", "compress_global"]


def _seed(spec: TaskSpec, round: int) -> int:
    return int.from_bytes(sha256(f"{spec.task_id}:{round}:global".encode())[:8], "big") & (2**62 - 1)


class GlobalStep:
    """One round's compressed global step: ``wire`` (the update's safetensors bytes), ``applied``
    (the new global state vector, ``base + decompress(wire)``) and the coordinator's new
    ``residual``."""

    def __init__(self, wire: bytes, applied: torch.Tensor, residual: torch.Tensor) -> None:
        self.wire, self.applied, self.residual = wire, applied, residual


def compress_global(
    spec: TaskSpec, round: int, base: torch.Tensor, new: torch.Tensor, residual: torch.Tensor | None
) -> GlobalStep:
    """Compress the step ``new - base`` (plus the carried ``residual``) with the task's
    ``global_compression``; the returned ``applied`` vector is what the round's checkpoint holds."""
    from deai.learn.compression import TAIL, ErrorFeedback, get_compressor

    comp = get_compressor(spec.global_compression)
    step_vec = new - base
    head = step_vec.numel() - dense_tail(spec)  # the buffers travel dense (compression/tail.py)
    feedback = ErrorFeedback(comp, head)
    if residual is not None:
        feedback.residual = residual.float().clone()
    seed = _seed(spec, round)
    step = feedback.step(
        step_vec[:head],
        seed=seed if comp.needs_seed else None,
        generator=torch.Generator().manual_seed(seed) if comp.needs_generator else None,
    )
    tail = step_vec[head:].float().contiguous()
    wire = {**step.tensors, TAIL: tail} if tail.numel() else step.tensors
    return GlobalStep(to_safetensors(wire), base + torch.cat([step.sent, tail]), feedback.residual)


def apply_patch(spec: TaskSpec, base: bytes, patch: bytes, dim: int, expected: str) -> bytes:
    """The round's checkpoint bytes rebuilt from the previous checkpoint ``base`` and the
    compressed global update ``patch``; BadUpdate unless they hash to ``expected``."""
    from deai.learn.compression import decompress_with_tail, get_compressor, tail_bytes
    from deai.learn.errors import LearnError

    comp, tail = get_compressor(spec.global_compression), dense_tail(spec)
    try:
        tensors = from_safetensors(patch, max_bytes=comp.max_bytes(dim - tail) + tail_bytes(tail))
        sent = decompress_with_tail(comp, tensors, dim, tail)
        model = load_checkpoint(spec, base)
        set_flat(model, get_flat(model) + sent)
        out = checkpoint_bytes(model)
    except (DeaiError, LearnError, ValueError) as exc:
        raise BadUpdate(f"global update refused: {exc}") from exc
    if sha256_hex(out) != expected.removeprefix("0x"):
        raise BadUpdate("the rebuilt checkpoint does not hash to the round's checkpoint")
    return out
