"""Sample-level DP-SGD for a provider's local training, through Opacus's ``PrivacyEngine``.

Per-sample gradients are clipped to ``max_grad_norm`` and Gaussian noise of std
``noise_multiplier * max_grad_norm`` is added to their sum; batches are drawn by Poisson sampling at
rate ``sample_rate`` (expected batch size ``sample_rate * n``). The provider's own (epsilon, delta)
comes from Opacus's accountant. Give either ``noise_multiplier`` or ``target_epsilon`` (then the noise
is the smallest that reaches it after ``epochs``).

Runs are reproducible: the Poisson sampler and the noise draw from torch generators seeded by
``seed`` (Opacus's non-secure mode; for production use ``secure_mode`` in Opacus directly, whose
cryptographic noise cannot be seeded). The model must use layers Opacus supports (Linear, Conv, ...).

**A library piece, not a network feature.** A network task with ``dp.mode: dpsgd`` is refused when
it is planned (``deai.sim.plan``); providers train with :mod:`deai.learn.training` and client-level
DP only. Wiring it would take a ``dpsgd`` mode in the task spec's ``DPSettings``, the provider's
local step (``deai.protocol.task.provider``) calling :func:`train_dp_sgd` instead of plain training,
and the accountant composing the per-sample epsilon into the task's report.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import torch
from opacus import PrivacyEngine
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from deai.learn.privacy.accountant import MECHANISMS, noise_multiplier_for
from deai.learn.privacy.errors import PrivacyError

__all__ = ["DPSGDConfig", "DPSGDResult", "train_dp_sgd"]


@dataclass(frozen=True)
class DPSGDConfig:
    epochs: int = 10
    lr: float = 0.5
    sample_rate: float = 0.05
    max_grad_norm: float = 1.0
    noise_multiplier: float | None = None
    target_epsilon: float | None = None
    delta: float = 1e-5
    momentum: float = 0.0
    accountant: str = "rdp"

    def __post_init__(self) -> None:
        if (self.noise_multiplier is None) == (self.target_epsilon is None):
            raise PrivacyError("give exactly one of noise_multiplier and target_epsilon")
        if not 0 < self.sample_rate <= 1 or self.epochs < 1 or self.max_grad_norm <= 0 or self.lr <= 0:
            raise PrivacyError("need 0 < sample_rate <= 1, epochs >= 1, max_grad_norm > 0, lr > 0")
        if self.accountant not in MECHANISMS:
            raise PrivacyError(f"unknown accountant {self.accountant!r}")


@dataclass
class DPSGDResult:
    epsilon: float
    delta: float
    noise_multiplier: float
    steps: int
    losses: list[float] = field(default_factory=list)  # mean loss per epoch


def train_dp_sgd(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, config: DPSGDConfig, *, seed: int
) -> DPSGDResult:
    """Train ``model`` in place on (x, y) with DP-SGD; returns the provider's epsilon at ``config.delta``."""
    if x.shape[0] != y.shape[0] or x.shape[0] == 0:
        raise PrivacyError("x and y must hold the same, nonzero number of samples")
    if not bool(torch.isfinite(x).all()):
        raise PrivacyError("training features hold NaN or infinity")
    n = x.shape[0]
    batch = max(1, round(config.sample_rate * n))
    steps_per_epoch = math.ceil(1 / config.sample_rate)
    steps = config.epochs * steps_per_epoch
    sigma = config.noise_multiplier
    if sigma is None:
        assert config.target_epsilon is not None  # the config holds exactly one of the two
        sigma = noise_multiplier_for(config.target_epsilon, config.delta, batch / n, steps, config.accountant)
    sample_gen = torch.Generator().manual_seed(seed)
    noise_gen = torch.Generator().manual_seed(seed + 1_000_003)
    loader = DataLoader(TensorDataset(x, y), batch_size=batch, generator=sample_gen)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Opacus warns that non-secure mode is for experiments
        engine = PrivacyEngine(accountant=config.accountant, secure_mode=False)
        private_model, optimizer, loader = engine.make_private(
            module=model,
            optimizer=optimizer,
            data_loader=loader,
            noise_multiplier=sigma,
            max_grad_norm=config.max_grad_norm,
            poisson_sampling=True,
            noise_generator=noise_gen,
        )
    loss_fn = nn.CrossEntropyLoss()
    losses = []
    private_model.train()
    warnings.filterwarnings("ignore", message="Full backward hook is firing", category=UserWarning)
    try:
        for _ in range(config.epochs):
            total, seen = 0.0, 0
            for xb, yb in loader:
                optimizer.zero_grad(set_to_none=True)
                if len(xb) == 0:  # an empty Poisson batch still takes a (noise-only) step
                    optimizer.step()
                    continue
                loss = loss_fn(private_model(xb), yb)
                loss.backward()
                optimizer.step()
                total, seen = total + loss.item() * len(xb), seen + len(xb)
            losses.append(total / max(seen, 1))
    finally:
        private_model._close()  # remove Opacus's hooks; the trained weights stay in ``model``
    return DPSGDResult(float(engine.get_epsilon(config.delta)), config.delta, float(sigma), steps, losses)
