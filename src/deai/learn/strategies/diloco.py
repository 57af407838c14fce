"""DiLoCo's outer optimizer (Douillard et al., 2023): Nesterov momentum on the averaged delta."""

from __future__ import annotations

import torch

from deai.learn.strategies.base import STRATEGIES, Strategy

__all__ = ["DiLoCo"]


@STRATEGIES.register("diloco")
class DiLoCo(Strategy):
    """The outer gradient is ``g = -delta``; SGD with Nesterov momentum (PyTorch's convention):

    ``buf = g`` at the first round, then ``buf = momentum * buf + g``;
    ``new = global - server_lr * (g + momentum * buf)``. Defaults are the paper's (0.7, 0.9).
    Providers run many local steps (the inner optimizer) between rounds.
    """

    def __init__(self, server_lr: float = 0.7, momentum: float = 0.9) -> None:
        super().__init__(server_lr)
        if not 0 <= momentum < 1:
            raise ValueError("diloco: momentum must be in [0, 1)")
        self.momentum = momentum
        self.buf: torch.Tensor | None = None

    def apply(self, global_vec: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        g = -delta
        self.buf = g.clone() if self.buf is None else self.momentum * self.buf + g
        return global_vec - self.server_lr * (g + self.momentum * self.buf)

    def state(self) -> dict[str, torch.Tensor]:
        return {} if self.buf is None else {"buf": self.buf}

    def reset(self) -> None:
        self.buf = None
