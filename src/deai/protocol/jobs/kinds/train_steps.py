"""``train_steps``: T plain-SGD steps from a checkpoint on shared data in a fixed, seeded order.

Inputs: ``[checkpoint, data]``; ``data`` is what the model takes
(:func:`~deai.protocol.jobs.kinds.base.dataset_input`): labelled features or images (float
``x [N, ...]``, int64 ``y [N]``; the CNN on images) or token windows (int64 ``x, y [N, T]``: next-token
loss, LoRA fine-tuning of a pretrained LM, whose checkpoint is its adapters).
Params: the model, ``steps`` (T), ``lr``, ``batch_size``, optional ``commit_every`` (k), optional
``keep_states`` (with k: the output also carries the state at every inner leaf, at most
:data:`~deai.protocol.jobs.trajectory.MAX_KEPT_LEAVES` leaves, what a resolver over the network reads
in a dispute), optional ``segment = [start, stop]`` (run only steps ``start .. stop-1`` of the
T-step schedule from the checkpoint: a referee's re-execution as an ordinary job). The batch
order is :func:`deai.learn.training.batch_schedule` drawn from the job seed, so every executor sees
the same batches. Output: the checkpoint after T steps (same names and shapes, float32); with
``commit_every = k`` also the state hashes every k steps (``step_hashes``, see
:mod:`deai.protocol.jobs.trajectory`), whose Merkle root a refereed dispute bisects.

:class:`StepProgram` exposes the computation one step at a time -- ``state_{t+1} = step(state_t, t)``
-- which is what refereed delegation (:mod:`deai.protocol.jobs.refereed`) needs: per-step state
hashes, and a referee that re-executes a single step. The optimizer is stateless (no momentum), so a
step's whole state is the parameter dict and its hash is :func:`~deai.core.tensorio.tensor_digest`.

Execution is pinned: the kind always runs on one intra-op thread with deterministic algorithms
(:func:`deai.learn.training.deterministic`), whatever the executor's settings. Unpinned, rounding
differences between thread counts compound over steps (a small CNN drifts by ~2e-3 after 100 steps,
see ``docs/verification.md``), which no useful tolerance can absorb; pinned, the steps are
bit-reproducible on a given CPU and library build -- what refereed delegation relies on.

Comparison: tolerance, for executors on different CPUs or library builds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from deai.learn.training import batch_schedule, deterministic, shared_state
from deai.protocol.jobs.compare import CompareRule
from deai.protocol.jobs.errors import BadJobSpec, InputMismatch
from deai.protocol.jobs.kinds.base import (
    KINDS,
    JobKind,
    Layout,
    Tensors,
    dataset_input,
    float_param,
    int_param,
)
from deai.protocol.jobs.kinds.model import check_model_params, load_model, model_layout
from deai.protocol.jobs.trajectory import HASHES, MAX_KEPT_LEAVES, Trainer, leaf_steps, state_name

__all__ = ["StepProgram", "TrainSteps"]


@dataclass
class StepProgram:
    """One training job as a sequence of pure steps (see the module doc)."""

    model: nn.Module
    x: torch.Tensor
    y: torch.Tensor
    schedule: torch.Tensor  # [T, b] sample indices
    lr: float
    initial: Tensors
    keep_states: bool = False  # the Trainer's output carries the inner leaves' states

    @property
    def steps(self) -> int:
        return int(self.schedule.shape[0])

    def step(self, state: Tensors, t: int) -> Tensors:
        """``state`` after SGD step ``t`` (0-based) on batch ``schedule[t]``; inputs are not modified."""
        if not 0 <= t < self.steps:
            raise IndexError(f"step {t} outside [0, {self.steps})")
        idx = self.schedule[t]
        with torch.enable_grad():
            params = {k: v.detach().requires_grad_(True) for k, v in state.items()}
            logits = functional_call(self.model, params, (self.x[idx],), strict=False)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), self.y[idx].reshape(-1))
            grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
        return {
            k: (v.detach() - self.lr * g if g is not None else v.detach()).contiguous()
            for (k, v), g in zip(params.items(), grads, strict=True)
        }

    def run(self, state: Tensors, start: int = 0, stop: int | None = None) -> Tensors:
        for t in range(start, self.steps if stop is None else stop):
            state = self.step(state, t)
        return state

    @classmethod
    def from_job(cls, inputs: Sequence[Tensors], params: Mapping[str, Any], seed: int) -> StepProgram:
        TrainSteps().output_layout(inputs, params)
        model = load_model(params, inputs[0])
        data = dataset_input(inputs, 1, params, "training")
        gen = torch.Generator().manual_seed(seed)
        schedule = batch_schedule(len(data), params["steps"], params["batch_size"], gen)
        initial = {k: v.detach().float().clone() for k, v in shared_state(model).items()}
        keep = bool(params.get("keep_states", False))
        return cls(model, data.x, data.y, schedule, float(params["lr"]), initial, keep)


@KINDS.register("train_steps")
class TrainSteps(JobKind):
    rule = CompareRule.tolerance(rtol=1e-3, atol=1e-5)

    def check_params(self, params: Mapping[str, Any]) -> None:
        check_model_params(params)
        int_param(params, "steps", 1, 1 << 24)
        int_param(params, "batch_size", 1, 1 << 20)
        float_param(params, "lr", 1e-12, 1e3)
        if "commit_every" in params:
            int_param(params, "commit_every", 1, params["steps"])
        if params.get("keep_states", False) is not False:
            if params["keep_states"] is not True or "commit_every" not in params:
                raise BadJobSpec("params.keep_states must be true, with commit_every")
            if len(leaf_steps(params["steps"], params["commit_every"])) > MAX_KEPT_LEAVES:
                raise BadJobSpec(f"params.keep_states allows at most {MAX_KEPT_LEAVES} leaves")
        if "segment" in params:
            seg = params["segment"]
            if (
                "commit_every" in params or not isinstance(seg, list) or len(seg) != 2
                or not all(type(v) is int for v in seg) or not 0 <= seg[0] < seg[1] <= params["steps"]
            ):  # fmt: skip
                raise BadJobSpec("params.segment must be [start, stop] with 0 <= start < stop <= steps")

    def output_layout(self, inputs: Sequence[Tensors], params: Mapping[str, Any]) -> Layout:
        self.check_params(params)
        if len(inputs) != 2:
            raise InputMismatch(f"train_steps takes [checkpoint, data], got {len(inputs)} inputs")
        layout = model_layout(params)
        dataset_input(inputs, 1, params, "training")
        out: Layout = {k: (shape, torch.float32) for k, (shape, _) in layout.items()}
        if params.get("keep_states"):
            for leaf in range(1, len(leaf_steps(params["steps"], params["commit_every"])) - 1):
                out.update({state_name(leaf, k): v for k, v in out.items() if not k.startswith("leaf/")})
        if "commit_every" in params:
            if HASHES in out:
                raise InputMismatch(f"the model has a tensor named {HASHES!r}, reserved for state hashes")
            out[HASHES] = ((len(leaf_steps(params["steps"], params["commit_every"])), 32), torch.uint8)
        return out

    def run(self, inputs: Sequence[Tensors], params: Mapping[str, Any], seed: int) -> Tensors:
        with deterministic(threads=1):
            program = StepProgram.from_job(inputs, params, seed)
            if "segment" in params:
                return program.run(program.initial, *params["segment"])
            if "commit_every" not in params:
                return program.run(program.initial)
            return Trainer(program, every=params["commit_every"]).output()
