"""FedProx (Li et al., MLSys 2020): FedAvg's server rule; providers add ``mu/2 ||w - w_global||^2``."""

from __future__ import annotations

from deai.learn.strategies.base import STRATEGIES
from deai.learn.strategies.fedavg import FedAvg

__all__ = ["FedProx"]


@STRATEGIES.register("fedprox")
class FedProx(FedAvg):
    """FedAvg whose providers train with the proximal coefficient ``mu`` (``TrainConfig.prox_mu``)."""

    def __init__(self, server_lr: float = 1.0, mu: float = 0.01) -> None:
        super().__init__(server_lr)
        if mu < 0:
            raise ValueError("fedprox: mu must be non-negative")
        self.prox_mu = mu
