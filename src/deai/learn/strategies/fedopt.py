"""FedAdam and FedYogi (Reddi et al., "Adaptive Federated Optimization", ICLR 2021)."""

from __future__ import annotations

import torch

from deai.learn.strategies.base import STRATEGIES, Strategy

__all__ = ["FedAdam", "FedYogi"]


@STRATEGIES.register("fedadam")
class FedAdam(Strategy):
    """Treat the aggregated delta as a pseudo-gradient step and apply Adam on the server:

    ``m = b1 m + (1 - b1) delta``; ``v = b2 v + (1 - b2) delta^2``;
    ``new = global + server_lr * m / (sqrt(v) + tau)``. Moments start at zero, no bias correction
    (as in the paper's Algorithm 2). ``tau`` bounds the adaptivity.
    """

    def __init__(self, server_lr: float = 0.01, beta1: float = 0.9, beta2: float = 0.99, tau: float = 1e-3):
        super().__init__(server_lr)
        if not (0 <= beta1 < 1 and 0 <= beta2 < 1 and tau > 0):
            raise ValueError(f"{self.name}: need 0 <= beta1, beta2 < 1 and tau > 0")
        self.beta1, self.beta2, self.tau = beta1, beta2, tau
        self.m: torch.Tensor | None = None
        self.v: torch.Tensor | None = None

    def _second_moment(self, v: torch.Tensor, sq: torch.Tensor) -> torch.Tensor:
        return self.beta2 * v + (1 - self.beta2) * sq

    def apply(self, global_vec: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        m = torch.zeros_like(delta) if self.m is None else self.m
        v = torch.zeros_like(delta) if self.v is None else self.v
        self.m = self.beta1 * m + (1 - self.beta1) * delta
        self.v = self._second_moment(v, delta * delta)
        return global_vec + self.server_lr * self.m / (self.v.sqrt() + self.tau)

    def state(self) -> dict[str, torch.Tensor]:
        return {k: t for k, t in (("m", self.m), ("v", self.v)) if t is not None}

    def reset(self) -> None:
        self.m = self.v = None


@STRATEGIES.register("fedyogi")
class FedYogi(FedAdam):
    """FedAdam with Yogi's additive second moment: ``v = v - (1 - b2) delta^2 sign(v - delta^2)``,
    which grows ``v`` no faster than the squared delta and so adapts more gently."""

    def _second_moment(self, v: torch.Tensor, sq: torch.Tensor) -> torch.Tensor:
        return v - (1 - self.beta2) * sq * torch.sign(v - sq)
