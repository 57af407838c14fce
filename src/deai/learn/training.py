"""Deterministic local training: a provider's update is ``delta = trained - start`` as one flat vector.

The flat vector is the model's **state vector** (:func:`state_names`): its trainable parameters
(``requires_grad``) in ``named_parameters()`` order, then its floating-point buffers (batch-norm
running statistics; not non-persistent constants such as rotary frequencies) in ``named_buffers()``
order, float32 (see :func:`get_flat` / :func:`set_flat`).
So batch-norm statistics travel and are aggregated with the weights, and a LoRA model (base frozen)
exchanges only its adapters. Integer buffers (``num_batches_tracked``) stay as the checkpoint has them.

The recipe (:class:`TrainConfig`): minibatch steps over a seeded batch schedule (the samples are
visited in a fresh permutation each epoch, cut into batches of ``min(batch_size, N)``), optimizer
SGD (momentum) or AdamW, weight decay, the FedProx proximal term ``mu/2 * ||w - w_start||^2``,
gradient clipping to a global L2 norm, a learning-rate schedule (constant, cosine or linear decay,
after linear warmup) and gradient accumulation (``accumulate`` micro-batches per optimizer step).
The loss is the data's objective (:mod:`deai.learn.objectives`: cross-entropy for labelled
features, next-token cross-entropy for token windows).

- :func:`local_train` trains one model in place and returns a :class:`TrainResult`; dropout draws
  from a generator seeded by ``seed`` (the global RNG is left as it was).
- :func:`train_many` trains n copies of one model on n datasets: the vectorized fast path
  (``torch.func.vmap``, one batched step for all providers) where it applies (:func:`vectorizable`:
  plain SGD, no buffers, no dropout, no clipping, schedule or accumulation, labelled features), else
  :func:`local_train` for each provider in turn. Both give :func:`local_train`'s result up to the
  float rounding of batched kernels.

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
from deai.learn.objectives import evaluate, logits_of, objective_for

__all__ = [
    "OPTIMIZERS",
    "SCHEDULES",
    "TrainConfig",
    "TrainResult",
    "batch_schedule",
    "buffer_size",
    "deterministic",
    "evaluate",
    "get_flat",
    "local_train",
    "lr_factor",
    "make_optimizer",
    "num_steps",
    "resolve_device",
    "set_flat",
    "shared_state",
    "state_names",
    "state_size",
    "train_many",
    "vectorizable",
]

OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("constant", "cosine", "linear")


@dataclass(frozen=True)
class TrainConfig:
    """Local training recipe (see the module docstring). ``steps`` (if set) overrides ``epochs`` and
    counts optimizer steps; each takes ``accumulate`` micro-batches of ``batch_size`` samples."""

    epochs: float = 1.0
    batch_size: int = 32
    lr: float = 0.05
    momentum: float = 0.0
    weight_decay: float = 0.0
    prox_mu: float = 0.0
    steps: int | None = None
    optimizer: str = "sgd"
    grad_clip: float = 0.0  # max global L2 norm of the gradient; 0 = no clipping
    schedule: str = "constant"
    warmup_steps: int = 0
    accumulate: int = 1
    loss: str = "auto"  # an objectives.LOSSES name, or "auto": from the data
    device: str = "cpu"  # where to train: "cpu", "cuda[:i]" or "auto" (a GPU when one is present)

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.lr <= 0 or self.epochs < 0 or self.prox_mu < 0:
            raise ValueError(f"invalid training config {self}")
        if not 0 <= self.momentum < 1 or self.weight_decay < 0 or (self.steps is not None and self.steps < 0):
            raise ValueError(f"invalid training config {self}")
        if self.optimizer not in OPTIMIZERS or self.schedule not in SCHEDULES:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS} and schedule one of {SCHEDULES}")
        if self.grad_clip < 0 or self.warmup_steps < 0 or self.accumulate < 1:
            raise ValueError(f"invalid training config {self}")
        if self.device not in ("cpu", "auto") and not self.device.startswith("cuda"):
            raise ValueError(f"device must be 'cpu', 'cuda[:i]' or 'auto', got {self.device!r}")


def resolve_device(name: str) -> torch.device:
    """``"auto"``: the first CUDA GPU when one is present, else the CPU; otherwise ``name``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


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


def _state_buffers(model: nn.Module) -> list[tuple[str, torch.Tensor]]:
    """Persistent floating-point buffers (batch-norm statistics), in ``named_buffers()`` order.
    Non-persistent buffers (rotary frequencies, causal masks) are constants the model recomputes:
    they are not state and never travel."""
    skip = {
        f"{prefix}.{b}" if prefix else b
        for prefix, module in model.named_modules()
        for b in module._non_persistent_buffers_set
    }
    return [(k, b) for k, b in model.named_buffers() if b.is_floating_point() and k not in skip]


def state_names(model: nn.Module) -> list[str]:
    """The names in the state vector: trainable parameters, then persistent floating-point buffers."""
    params = [k for k, p in model.named_parameters() if p.requires_grad]
    return params + [k for k, _ in _state_buffers(model)]


def state_size(model: nn.Module) -> int:
    """The length of the state vector (works on the ``meta`` device)."""
    return sum(t.numel() for t in _state_tensors(model))


def buffer_size(model: nn.Module) -> int:
    """How many of the state vector's values are floating-point buffers (its last ones)."""
    return sum(b.numel() for _, b in _state_buffers(model))


def _state_tensors(model: nn.Module) -> list[torch.Tensor]:
    params = [p for p in model.parameters() if p.requires_grad]
    return params + [b for _, b in _state_buffers(model)]


def shared_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """What a checkpoint of ``model`` holds: its ``state_dict`` less the frozen parameters (the
    weights of a pretrained base, which every participant holds already: a LoRA checkpoint is its
    adapters). Tensors are detached references, not copies."""
    # every name of a frozen parameter, tied aliases included (a base's lm_head shares the
    # embedding matrix: named_parameters() lists it once, state_dict() under both names)
    frozen = {k for k, p in model.named_parameters(remove_duplicate=False) if not p.requires_grad}
    return {k: v.detach() for k, v in model.state_dict().items() if k not in frozen}


def get_flat(model: nn.Module) -> torch.Tensor:
    """The model's state vector (:func:`state_names`) as one detached float32 CPU vector (a copy)."""
    return torch.cat([t.detach().reshape(-1).float().cpu() for t in _state_tensors(model)]).clone()


def set_flat(model: nn.Module, vec: torch.Tensor) -> None:
    """Load a state vector (:func:`get_flat`'s layout) into the model.

    A batch-norm running variance below zero (possible in an aggregate of adversarial updates) is
    clamped to zero, so a loaded model never computes the square root of a negative number.
    """
    tensors = _state_tensors(model)
    total = sum(t.numel() for t in tensors)
    if vec.dim() != 1 or vec.numel() != total:
        raise ValueError(f"flat vector has shape {tuple(vec.shape)}, the model needs ({total},)")
    offset = 0
    with torch.no_grad():
        for t in tensors:
            t.copy_(vec[offset : offset + t.numel()].view_as(t))
            offset += t.numel()
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._NormBase) and m.running_var is not None:
                m.running_var.clamp_(min=0.0)


def num_steps(num_samples: int, config: TrainConfig) -> int:
    """Optimizer steps for a dataset of this size: ``config.steps`` or
    ``ceil(epochs * N / (batch * accumulate))``."""
    if config.steps is not None:
        return config.steps
    per_step = min(config.batch_size, max(num_samples, 1)) * config.accumulate
    return math.ceil(config.epochs * num_samples / per_step)


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


def lr_factor(config: TrainConfig, step: int, steps: int) -> float:
    """The learning-rate multiplier at optimizer step ``step`` of ``steps``: linear warmup over
    ``warmup_steps``, then constant, cosine or linear decay to 0 at the last step."""
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    if config.schedule == "constant":
        return 1.0
    span = max(steps - config.warmup_steps, 1)
    progress = min((step - config.warmup_steps) / span, 1.0)
    if config.schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    return 1.0 - progress


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer :func:`local_train` uses over the trainable parameters (exposed so wrappers
    such as Opacus can reuse it)."""
    params = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)


def _dropout_seed(seed: int) -> int:
    return (seed * 0x9E3779B1 + 0x5BD1E995) & (2**63 - 1)


def local_train(model: nn.Module, data: Dataset, config: TrainConfig, *, seed: int) -> TrainResult:
    """Train ``model`` in place on ``data``; return the update ``trained - start`` and metrics.

    ``seed`` fixes the batch order and every dropout mask (the global RNG is restored afterwards).
    On a GPU (``config.device``) the model moves there for training and back to the CPU after;
    batches are copied over one at a time. GPU results differ from CPU ones in the last bits (and
    between GPU models): verified re-execution compares them within the kind's tolerance.
    """
    objective = objective_for(data, config.loss)
    start = get_flat(model)
    params = [p for p in model.parameters() if p.requires_grad]
    anchors = [p.detach().clone() for p in params] if config.prox_mu else []
    gen = torch.Generator().manual_seed(seed)
    steps = num_steps(len(data), config)
    schedule = batch_schedule(len(data), steps * config.accumulate, config.batch_size, gen)
    device = resolve_device(config.device)
    home = next((t.device for t in model.state_dict().values()), torch.device("cpu"))
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    anchors = [a.to(device) for a in anchors]
    opt = make_optimizer(model, config)
    model.train()
    total = 0.0
    gpus = [device.index or 0] if device.type == "cuda" else []
    # enable_grad: callers may sit in a no_grad block (a job kind's run), training needs autograd
    with torch.random.fork_rng(devices=gpus), torch.enable_grad():
        torch.manual_seed(_dropout_seed(seed))
        for s in range(steps):
            for group in opt.param_groups:
                group["lr"] = config.lr * lr_factor(config, s, steps)
            opt.zero_grad(set_to_none=False)
            for a in range(config.accumulate):
                idx = schedule[s * config.accumulate + a]
                x, y = data.x[idx].to(device), data.y[idx].to(device)
                loss = objective.loss(logits_of(model(x)), y)
                (loss / config.accumulate if config.accumulate > 1 else loss).backward()
                total += float(loss.detach()) / config.accumulate
            if config.prox_mu:
                # FedProx: the gradient of mu/2 * ||w - w_start||^2, added outside the loss so that
                # per-sample-gradient wrappers (Opacus) see only the data term.
                with torch.no_grad():
                    for p, anchor in zip(params, anchors, strict=True):
                        assert p.grad is not None  # zero_grad(set_to_none=False) + backward filled it
                        p.grad.add_(p.detach() - anchor, alpha=config.prox_mu)
            if config.grad_clip:
                torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
            opt.step()
    model.to(home)
    delta = get_flat(model) - start
    mean_loss = total / steps if steps else float("nan")
    return TrainResult(delta, len(data), steps, mean_loss, {"train_loss": mean_loss})


def vectorizable(model: nn.Module, config: TrainConfig, datasets: Sequence[Dataset]) -> bool:
    """Whether :func:`train_many` may take the vectorized path: labelled features, plain SGD, and a
    model whose whole state is trainable parameters (no buffers, nothing frozen, no active dropout)."""
    if any(d.is_tokens for d in datasets) or config.loss not in ("auto", "cross_entropy"):
        return False
    if config.optimizer != "sgd" or config.grad_clip or config.accumulate != 1:
        return False
    if config.schedule != "constant" or config.warmup_steps:
        return False
    if any(True for _ in model.buffers()) or not all(p.requires_grad for p in model.parameters()):
        return False
    return not any(isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0 for m in model.modules())


def train_many(
    model: nn.Module,
    start: torch.Tensor,
    datasets: Sequence[Dataset],
    config: TrainConfig,
    seeds: Sequence[int],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Train n copies of ``model`` (all starting at the state vector ``start``) on n datasets.

    Returns ``(deltas [n, d], mean_losses [n])``; provider i follows exactly :func:`local_train`'s
    schedule for ``seeds[i]``. Vectorized over providers where :func:`vectorizable` allows (then
    providers with fewer steps or smaller batches are masked, not padded with data), else one
    :func:`local_train` per provider on a copy of ``model``. ``model`` itself is not changed.
    """
    n = len(datasets)
    if n != len(seeds) or n == 0:
        raise ValueError("train_many needs one seed per dataset and at least one dataset")
    if vectorizable(model, config, datasets):
        return _train_vectorized(model, start, datasets, config, seeds)
    # Each provider trains ``model`` itself from ``start``, which is put back at the end: no copy
    # (a LoRA model's frozen base is hundreds of MB); integer buffers (batch-norm step counters,
    # outside the state vector) and the train/eval mode are restored too.
    counters = {k: b.clone() for k, b in model.named_buffers() if not b.is_floating_point()}
    mode = model.training
    deltas, losses = [], []
    try:
        for data, seed in zip(datasets, seeds, strict=True):
            set_flat(model, start)
            result = local_train(model, data, config, seed=seed)
            deltas.append(result.delta)
            losses.append(result.loss)
    finally:
        set_flat(model, start)
        with torch.no_grad():
            for k, b in model.named_buffers():
                if k in counters:
                    b.copy_(counters[k])
        model.train(mode)
    return torch.stack(deltas), torch.tensor(losses, dtype=torch.float32)


def _train_vectorized(
    model: nn.Module,
    start: torch.Tensor,
    datasets: Sequence[Dataset],
    config: TrainConfig,
    seeds: Sequence[int],
) -> tuple[torch.Tensor, torch.Tensor]:
    from torch.func import functional_call, grad_and_value, vmap

    n = len(datasets)
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
