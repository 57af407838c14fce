"""The strategy base: a server-side update rule on the flat global vector.

A round's providers send deltas (``trained - global``); an aggregator (the weighted mean for plain
FedAvg, or a robust one) reduces them to one ``delta``; the strategy turns it into the next global
vector: ``new_global = strategy.apply(global_vec, delta)``. Strategies with server optimizer state
(FedAdam, FedYogi, DiLoCo) keep it across rounds; :meth:`Strategy.state` / :meth:`load_state` save
and restore it (plain tensors), :meth:`reset` clears it. ``prox_mu`` tells providers which FedProx
proximal coefficient to train with (0 for everything but FedProx).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import torch

from deai.core.registry import Registry
from deai.learn.errors import UnknownName

__all__ = ["STRATEGIES", "Strategy"]


class Strategy(ABC):
    """Turns an aggregated delta into the next global parameter vector."""

    name: ClassVar[str] = "strategy"
    prox_mu: float = 0.0

    def __init__(self, server_lr: float = 1.0) -> None:
        if server_lr <= 0:
            raise ValueError(f"{self.name}: server_lr must be positive")
        self.server_lr = server_lr

    def __call__(self, global_vec: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        if global_vec.shape != delta.shape or global_vec.dim() != 1:
            raise ValueError(
                f"{self.name}: global {tuple(global_vec.shape)} and delta {tuple(delta.shape)} differ"
            )
        return self.apply(global_vec, delta)

    @abstractmethod
    def apply(self, global_vec: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        """The next global vector (a new tensor; inputs are not modified)."""

    def state(self) -> dict[str, torch.Tensor]:
        """Optimizer state as named tensors (empty for stateless strategies)."""
        return {}

    def load_state(self, state: dict[str, torch.Tensor]) -> None:
        """Restore :meth:`state`'s output."""
        for k, v in state.items():
            setattr(self, k, v.clone())

    def reset(self) -> None:
        """Forget optimizer state (a new task)."""
        for k in self.state():
            setattr(self, k, None)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(server_lr={self.server_lr})"


STRATEGIES: Registry[Strategy] = Registry("strategy", UnknownName, stamp="name")
"""Every server strategy; the decorator sets ``cls.name``."""
