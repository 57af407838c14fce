"""Error feedback: the provider keeps what compression dropped and sends it later.

Each round the provider compresses ``target = delta + e`` (its new update plus the residual ``e``)
and keeps ``e <- target - decompress(sent)``, where ``decompress`` is exactly what every receiver
computes. So, summed over rounds, what was sent equals what was meant minus the final residual:
``sum(sent) = sum(delta) - e_T`` (up to float32 rounding of the additions); nothing is lost, only
delayed. With top-k this is what makes a biased sparsifier converge (Stich et al. 2018;
Karimireddy et al. 2019; SparseLoCo keeps the same residual).

Privacy: add differential-privacy noise to ``delta`` *before* it enters error feedback. The
residual is then a function of the noised updates only, and what is sent is post-processing of
them, so the privacy accounting of the noised updates still holds. (Noise added after compression
would let the residual carry un-noised information into later rounds.)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from deai.learn.compression.compressor import Compressor
from deai.learn.compression.errors import BadCompressed

__all__ = ["ErrorFeedback", "FeedbackStep"]


@dataclass(frozen=True)
class FeedbackStep:
    """One round of error feedback: ``tensors`` (the wire dict to send) and ``sent`` (float32
    ``[d]``: what every receiver decompresses from it)."""

    tensors: dict[str, torch.Tensor]
    sent: torch.Tensor


class ErrorFeedback:
    """The residual of one provider for one compressor and one ``d``; starts at zero.

    ``residual`` (float32 ``[d]``) is the provider's state: persist it between rounds if the
    provider restarts (e.g. with :func:`deai.core.tensorio.to_safetensors`), and :meth:`reset` it
    when the model it belongs to changes shape or the task restarts."""

    def __init__(self, compressor: Compressor, d: int) -> None:
        if isinstance(d, bool) or not isinstance(d, int) or d < 1:
            raise BadCompressed(f"d must be a positive int, got {d!r}")
        self.compressor = compressor
        self.d = d
        self.residual = torch.zeros(d, dtype=torch.float32)

    def step(
        self, delta: torch.Tensor, *, seed: int | None = None, generator: torch.Generator | None = None
    ) -> FeedbackStep:
        """Compress ``delta + residual`` (``seed`` and ``generator`` as for
        :meth:`Compressor.compress`) and keep what was not sent as the new residual."""
        if not isinstance(delta, torch.Tensor) or tuple(delta.shape) != (self.d,):
            raise BadCompressed(f"delta must be a tensor of shape ({self.d},)")
        target = delta.detach().to(device="cpu", dtype=torch.float32) + self.residual
        tensors = self.compressor.compress(target, seed=seed, generator=generator)
        sent = self.compressor.decompress(tensors, self.d)
        self.residual = target - sent
        return FeedbackStep(tensors, sent)

    def reset(self) -> None:
        """Forget the residual (back to zeros)."""
        self.residual = torch.zeros(self.d, dtype=torch.float32)
