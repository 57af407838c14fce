"""FedAvg (McMahan et al., AISTATS 2017) on the server side."""

from __future__ import annotations

import torch

from deai.learn.strategies.base import STRATEGIES, Strategy

__all__ = ["FedAvg"]


@STRATEGIES.register("fedavg")
class FedAvg(Strategy):
    """``new = global + server_lr * delta``; with the sample-weighted mean as aggregator this is FedAvg."""

    def apply(self, global_vec: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        return global_vec + self.server_lr * delta
