"""Client-level differential privacy (DP-FedAvg, McMahan et al. 2018): clip each provider's whole
update to L2 norm ``clip`` and add Gaussian noise of standard deviation ``noise_multiplier * clip``.

Modes (where the noise is added):
- ``central``: providers only clip; the aggregator adds the noise once to the sum. Needs an aggregator
  trusted not to look at single updates (or secure aggregation, with the noise added after it).
- ``distributed``: each of the expected ``m`` providers adds noise of std ``z * clip / sqrt(m)``; their
  sum carries the central noise level, so combined with secure aggregation nobody sees an unnoised
  sum. The guarantee assumes the providers are honest about their noise.
- ``local``: each provider adds the full ``z * clip`` noise to its own update: a guarantee that does
  not trust the aggregator at all, at sqrt(m) times the noise in the average.

The accountant's sample rate is the round's participation rate in ``central``/``distributed`` mode;
in ``local`` mode the aggregator sees who took part, so use ``sample_rate = 1`` per round taken part in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from deai.learn.privacy.errors import PrivacyError

__all__ = ["MODES", "ClientDP", "clip_updates"]

MODES = ("central", "distributed", "local")


def clip_updates(updates: torch.Tensor, clip: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale each row of ``[n, d]`` updates to L2 norm at most ``clip``; returns (clipped, norms)."""
    if updates.dim() != 2 or not updates.is_floating_point():
        raise PrivacyError(
            f"updates must be a float [n, d] tensor, got {tuple(updates.shape)} {updates.dtype}"
        )
    if not bool(torch.isfinite(updates).all()):
        bad = (~torch.isfinite(updates)).any(1).nonzero().flatten().tolist()
        raise PrivacyError(f"updates hold NaN or infinity in rows {bad[:10]}")
    if not (math.isfinite(clip) and clip > 0):
        raise PrivacyError(f"clip must be positive and finite, got {clip}")
    norms = torch.linalg.vector_norm(updates, dim=1)
    scale = torch.clamp(clip / torch.clamp(norms, min=1e-12), max=1.0)
    return updates * scale[:, None], norms


@dataclass
class ClientDP:
    """Clip-and-noise for provider updates. ``expected_count``: providers expected per round (the
    fixed denominator of the noised mean, and the ``m`` of distributed mode)."""

    clip: float
    noise_multiplier: float
    mode: str = "central"  # one of MODES, checked on construction (task specs carry it as a string)
    expected_count: int = 1

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise PrivacyError(f"unknown DP mode {self.mode!r}; known: {', '.join(MODES)}")
        if not (math.isfinite(self.noise_multiplier) and self.noise_multiplier >= 0):
            raise PrivacyError(f"noise multiplier must be finite and >= 0, got {self.noise_multiplier}")
        if self.expected_count < 1:
            raise PrivacyError("expected_count must be >= 1")

    @property
    def sigma(self) -> float:
        """Std of the noise on the sum of updates."""
        return self.noise_multiplier * self.clip

    def provider_noise_std(self) -> float:
        """Std of the noise each provider adds to its own update (0 in central mode)."""
        if self.mode == "local":
            return self.sigma
        if self.mode == "distributed":
            return self.sigma / math.sqrt(self.expected_count)
        return 0.0

    def privatize(self, update: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Provider side: clip a flat update and add this mode's share of the noise."""
        if update.dim() != 1:
            raise PrivacyError(f"an update is a flat [d] vector, got {tuple(update.shape)}")
        clipped, _ = clip_updates(update[None], self.clip)
        std = self.provider_noise_std()
        if std > 0:
            clipped = clipped + std * torch.randn(clipped.shape, generator=generator, dtype=clipped.dtype)
        return clipped[0]

    def aggregate(self, updates: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Aggregator side: the noised mean of ``[n, d]`` updates.

        ``central`` clips every row and adds the noise to the sum; ``distributed``/``local`` expect
        rows already privatized by :meth:`privatize` (their noise is in them) and only sum them. The
        sum is divided by ``expected_count``, a fixed denominator, so one provider's presence moves
        the output by at most clip / m.
        """
        if self.mode == "central":
            clipped, _ = clip_updates(updates, self.clip)
            total = clipped.sum(0)
            total = total + self.sigma * torch.randn(total.shape, generator=generator, dtype=total.dtype)
        else:
            if updates.dim() != 2 or not bool(torch.isfinite(updates).all()):
                raise PrivacyError("updates must be a finite [n, d] tensor")
            total = updates.sum(0)
        return total / self.expected_count
