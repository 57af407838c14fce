"""Adaptive clipping by private quantile tracking (Andrew, Thakkar, McMahan, Ramaswamy, NeurIPS 2021).

Each round every participant reports one bit, ``norm <= clip``. The aggregator noises the count
(std ``count_noise_std``), and moves the clip geometrically toward the target quantile ``gamma``:
``clip <- clip * exp(-lr * (b_mean - gamma))``. The bit count spends privacy too: to keep a total
noise multiplier ``z``, the updates are noised with ``z_delta = (z^-2 - (2 sigma_b)^-2)^-1/2``
(the bits have sensitivity 1/2 once centred), which :attr:`update_noise_multiplier` returns.
The accountant is then stepped with ``z`` (the combined mechanism's multiplier).
"""

from __future__ import annotations

import math

import torch

from deai.learn.privacy.errors import PrivacyError

__all__ = ["AdaptiveClipping"]


class AdaptiveClipping:
    def __init__(
        self,
        initial_clip: float = 1.0,
        target_quantile: float = 0.5,
        lr: float = 0.2,
        noise_multiplier: float = 1.0,
        count_noise_std: float | None = None,
        expected_count: int = 1,
    ) -> None:
        if not 0 < target_quantile < 1:
            raise PrivacyError("target quantile must be in (0, 1)")
        if initial_clip <= 0 or lr <= 0:
            raise PrivacyError("initial clip and lr must be positive")
        # The paper's default: sigma_b = m / 20, a small share of the privacy budget.
        self.count_noise_std = expected_count / 20 if count_noise_std is None else count_noise_std
        if noise_multiplier > 0 and 2 * self.count_noise_std <= noise_multiplier:
            raise PrivacyError(
                f"count noise std {self.count_noise_std} is too small for total noise multiplier "
                f"{noise_multiplier}: need 2 * sigma_b > z"
            )
        self.clip, self.gamma, self.lr = float(initial_clip), target_quantile, lr
        self.noise_multiplier, self.expected_count = noise_multiplier, expected_count
        self.history: list[float] = [self.clip]

    @property
    def update_noise_multiplier(self) -> float:
        """Noise multiplier for the clipped updates so the combined mechanism has ``noise_multiplier``."""
        z = self.noise_multiplier
        if z == 0:
            return 0.0
        return (z**-2 - (2 * self.count_noise_std) ** -2) ** -0.5

    def update(self, norms: torch.Tensor, generator: torch.Generator) -> float:
        """Move the clip from this round's update norms (measured against the current clip)."""
        if norms.dim() != 1 or not bool(torch.isfinite(norms).all()):
            raise PrivacyError("norms must be a finite [n] vector")
        count = float((norms <= self.clip).sum())
        if self.noise_multiplier > 0:
            count += self.count_noise_std * float(torch.randn((), generator=generator, dtype=torch.float64))
        b_mean = count / self.expected_count
        self.clip *= math.exp(-self.lr * (b_mean - self.gamma))
        self.history.append(self.clip)
        return self.clip
