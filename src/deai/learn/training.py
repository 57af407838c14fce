"""Deterministic local training: a provider's update is ``delta = trained - start`` as one flat vector.

The flat vector is the model's parameters in ``named_parameters()`` order, float32 (see
:func:`get_flat` / :func:`set_flat`). Training is plain minibatch SGD (optional momentum, weight decay
and the FedProx proximal term ``mu/2 * ||w - w_start||^2``) over a seeded batch schedule: the samples
are visited in a fresh permutation each epoch, cut into batches of ``min(batch_size, N)``.

- :func:`local_train` trains one model in place and returns a :class:`TrainResult`.
- :func:`train_many` trains n copies of one model on n datasets at once (``torch.func.vmap``): the
  same schedule and update rule as :func:`local_train`, vectorized over providers, for simulations.
- :func:`evaluate` returns accuracy and mean cross-entropy.

Run under :func:`deterministic` (deterministic algorithms, a fixed thread count) to get the same bits
for the same seed on the same machine.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from deai.learn.data import Dataset
from deai.learn.errors import DataError

__all__ = [
    "TrainConfig",
    "TrainResult",
    "batch_schedule",
    "deterministic",
    "evaluate",
    "get_flat",
    "local_train",
    "make_optimizer",
    "num_steps",
    "set_flat",
    "train_many",
]


@dataclass(frozen=True)
class TrainConfig:
    """Local training recipe. ``steps`` (if set) overrides ``epochs``."""

    epochs: float = 1.0
    batch_size: int = 32
    lr: float = 0.05
    momentum: float = 0.0
    weight_decay: float = 0.0
    prox_mu: float = 0.0
    steps: int | None = None

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.lr <= 0 or self.epochs < 0 or self.prox_mu < 0:
            raise ValueError(f"invalid training config {self}")
        if not 0 <= self.momentum < 1 or self.weight_decay < 0 or (self.steps is not None and self.steps < 0):
            raise ValueError(f"invalid training config {self}")


@dataclass
class TrainResult:
    """A provider's flat update (``delta``, float32) and what it took to produce it."""

    delta: torch.Tensor
    num_samples: int
    steps: int
    loss: float
    metrics: dict[str, float] = field(default_factory=dict)


@contextmanager
def deterministic(threads: int = 1) -> Iterator[None]:
    """Deterministic algorithms and a fixed intra-op thread count for the duration of the block."""
    prev_det, prev_threads = torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(prev_det)
        torch.set_num_threads(prev_threads)


def get_flat(model: nn.Module) -> torch.Tensor:
    """The model's parameters as one detached float32 vector (a copy)."""
    return torch.cat([p.detach().reshape(-1).float() for p in model.parameters()]).clone()


def set_flat(model: nn.Module, vec: torch.Tensor) -> None:
    """Load a flat vector (from :func:`get_flat`'s layout) into the model's parameters."""
    total = sum(p.numel() for p in model.parameters())
    if vec.dim() != 1 or vec.numel() != total:
        raise ValueError(f"flat vector has shape {tuple(vec.shape)}, the model needs ({total},)")
    offset = 0
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(vec[offset : offset + p.numel()].view_as(p))
            offset += p.numel()


def num_steps(num_samples: int, config: TrainConfig) -> int:
    """Local steps for a dataset of this size: ``config.steps`` or ``ceil(epochs * N / batch)``."""
    if config.steps is not None:
        return config.steps
    return math.ceil(config.epochs * num_samples / min(config.batch_size, max(num_samples, 1)))


def batch_schedule(num_samples: int, steps: int, batch_size: int, generator: torch.Generator) -> torch.Tensor:
    """``[steps, min(batch_size, N)]`` sample indices: consecutive epochs' permutations, cut in batches."""
    if num_samples < 1:
        raise DataError("cannot train on an empty dataset")
    b = min(batch_size, num_samples)
    need = steps * b
    epochs = math.ceil(need / num_samples) if need else 0
    perms = [torch.randperm(num_samples, generator=generator) for _ in range(epochs)]
    stream = torch.cat(perms) if perms else torch.zeros(0, dtype=torch.long)
    return stream[:need].reshape(steps, b)


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.SGD:
    """The SGD optimizer :func:`local_train` uses (exposed so wrappers such as Opacus can reuse it)."""
    return torch.optim.SGD(
        model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )


def local_train(model: nn.Module, data: Dataset, config: TrainConfig, *, seed: int) -> TrainResult:
    """Train ``model`` in place on ``data``; return the update ``trained - start`` and metrics."""
    start = get_flat(model)
    anchors = [p.detach().clone() for p in model.parameters()] if config.prox_mu else []
    gen = torch.Generator().manual_seed(seed)
    steps = num_steps(len(data), config)
    schedule = batch_schedule(len(data), steps, config.batch_size, gen)
    opt = make_optimizer(model, config)
    model.train()
    total = 0.0
    for idx in schedule:
        opt.zero_grad(set_to_none=False)
        loss = F.cross_entropy(model(data.x[idx]), data.y[idx])
        loss.backward()
        if config.prox_mu:
            # FedProx: the gradient of mu/2 * ||w - w_start||^2, added outside the loss so that
            # per-sample-gradient wrappers (Opacus) see only the data term.
            with torch.no_grad():
                for p, a in zip(model.parameters(), anchors, strict=True):
                    assert p.grad is not None  # zero_grad(set_to_none=False) + backward filled it
                    p.grad.add_(p.detach() - a, alpha=config.prox_mu)
        opt.step()
        total += float(loss.detach())
    delta = get_flat(model) - start
    mean_loss = total / steps if steps else float("nan")
    return TrainResult(delta, len(data), steps, mean_loss, {"train_loss": mean_loss})


def train_many(
    model: nn.Module,
    start: torch.Tensor,
    datasets: Sequence[Dataset],
    config: TrainConfig,
    seeds: Sequence[int],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Train n copies of ``model`` (all starting at flat ``start``) on n datasets at once.

    Returns ``(deltas [n, d], mean_losses [n])``. Provider i follows exactly :func:`local_train`'s
    schedule for ``seeds[i]``; providers with fewer steps or smaller batches are masked, not padded
    with data. The results match :func:`local_train` up to float rounding of batched kernels.
    """
    from torch.func import functional_call, grad_and_value, vmap

    n = len(datasets)
    if n != len(seeds) or n == 0:
        raise ValueError("train_many needs one seed per dataset and at least one dataset")
    names = [name for name, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]
    sizes = [p.numel() for _, p in model.named_parameters()]
    steps = [num_steps(len(d), config) for d in datasets]
    smax, b = max(steps), min(config.batch_size, max(len(d) for d in datasets))
    # All providers' samples in one tensor; the schedules become global row indices [n, S, b] and
    # each step gathers its [n, b, F] batch (memory stays O(total samples), not O(steps)).
    x_all = torch.cat([d.x for d in datasets])
    y_all = torch.cat([d.y for d in datasets])
    offsets = [0]
    for d in datasets[:-1]:
        offsets.append(offsets[-1] + len(d))
    idx = torch.zeros(n, smax, b, dtype=torch.long)
    mask = torch.zeros(n, smax, b)
    for i, (d, s) in enumerate(zip(datasets, seeds, strict=True)):
        sched = batch_schedule(len(d), steps[i], config.batch_size, torch.Generator().manual_seed(s))
        bi = sched.shape[1]
        idx[i, : steps[i], :bi] = sched + offsets[i]
        mask[i, : steps[i], :bi] = 1.0

    def loss_fn(flat: torch.Tensor, x: torch.Tensor, y: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        params = {k: v.view(shape) for k, v, shape in zip(names, flat.split(sizes), shapes, strict=True)}
        ce = F.cross_entropy(functional_call(model, params, (x,)), y, reduction="none")
        return (ce * m).sum() / m.sum().clamp_min(1.0)

    step_fn = vmap(grad_and_value(loss_fn))
    w = start.detach().float().expand(n, -1).clone()
    buf = torch.zeros_like(w)
    losses = torch.zeros(n)
    model.train()
    for s in range(smax):
        active = (mask[:, s, 0] > 0).float().unsqueeze(1)  # providers still training at step s
        g, loss = step_fn(w, x_all[idx[:, s]], y_all[idx[:, s]], mask[:, s])
        # Same order of terms as torch.optim.SGD with the proximal gradient added to p.grad first.
        if config.prox_mu:
            g = g + config.prox_mu * (w - start)
        if config.weight_decay:
            g = g + config.weight_decay * w
        if config.momentum:
            buf = torch.where(active > 0, g if s == 0 else config.momentum * buf + g, buf)
            g = buf
        w = w - config.lr * active * g
        losses += loss.detach() * active.squeeze(1)
    return w - start, losses / torch.tensor(steps, dtype=torch.float32).clamp_min(1)


@torch.no_grad()
def evaluate(model: nn.Module, data: Dataset, batch_size: int = 2048) -> dict[str, float]:
    """Accuracy and mean cross-entropy of ``model`` on ``data``."""
    if len(data) == 0:
        raise DataError("cannot evaluate on an empty dataset")
    model.eval()
    correct, loss = 0, 0.0
    for i in range(0, len(data), batch_size):
        logits = model(data.x[i : i + batch_size])
        y = data.y[i : i + batch_size]
        loss += float(F.cross_entropy(logits, y, reduction="sum"))
        correct += int((logits.argmax(1) == y).sum())
    return {"accuracy": correct / len(data), "loss": loss / len(data)}
