"""One description of a federated task, built in both systems: deai's scenario and Flower's files.

A :class:`PeerTask` fixes the data (dataset, caps, partition, seed), the model and its initial
weights, the local recipe (optimizer, lr, momentum, weight decay, epochs, batch size), the rounds,
the evaluation set and the Byzantine providers (which clients, which attack). Both sides take all of
it from here:

- deai: :func:`scenario_of` turns it into a :class:`deai.sim.scenario.Scenario`, run by
  :func:`deai.sim.runner.run_scenario` (what ``deai simulate`` runs: the whole protocol);
- Flower: :func:`export` writes the same scenario's plan (:class:`deai.sim.plan.NetworkPlan`: the
  providers' parts in provider order, the test split, the task bundle's initial checkpoint, the
  Byzantine rows) to one ``.npz`` and one ``.json``, which ``flower_side.py`` reads in Flower's venv.

This module runs in deai's venv only (``flower_side.py`` never imports it).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["TASKS", "PeerTask", "export", "scenario_of", "small_form"]


@dataclass(frozen=True)
class PeerTask:
    name: str
    dataset: dict[str, Any]  # the scenario's ``dataset`` section
    model: str
    model_options: dict[str, Any]
    providers: int = 20
    rounds: int = 20
    local_epochs: float = 1.0
    batch_size: int = 32
    optimizer: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.0
    weight_decay: float = 0.0
    partition: dict[str, Any] = field(default_factory=lambda: {"kind": "iid"})
    deai_aggregator: str = "mean"  # deai's rule; Flower: FedAvg, or its robust rules under attack
    score_samples: int = 256
    attack: str | None = None  # a deai.learn.attacks name, sent by the last ``byzantine`` providers
    byzantine: int = 0
    seed: int = 0

    def with_attack(self, attack: str) -> PeerTask:
        return replace(self, name=f"{self.name}+{attack}", attack=attack)


DIGITS_MLP = PeerTask(
    name="digits_mlp",
    dataset={"name": "digits"},
    model="mlp",
    model_options={},
    providers=20,
    rounds=20,
    local_epochs=3,
    lr=0.2,
    seed=1,
)
FASHION_CNN = PeerTask(
    name="fashion_cnn",
    dataset={
        "name": "fashion_mnist",
        "validation_fraction": 0.02,
        "max_train_samples": 6000,
        "max_validation_samples": 600,
        "max_test_samples": 2000,
    },
    model="resnet",
    model_options={"input_shape": [1, 28, 28], "widths": [8, 16, 32]},
    providers=20,
    rounds=5,
    local_epochs=1,
    lr=0.05,
    momentum=0.9,
    weight_decay=5e-4,
    partition={"kind": "dirichlet", "alpha": 0.5},
    deai_aggregator="default",
    seed=3,
)
FASHION_BYZANTINE = replace(FASHION_CNN, name="fashion_cnn_byzantine", byzantine=5)
TASKS = {"digits_mlp": DIGITS_MLP, "fashion_cnn": FASHION_CNN, "fashion_cnn_byzantine": FASHION_BYZANTINE}


def small_form(task: PeerTask) -> PeerTask:
    """A few seconds per side: 4 providers (1 Byzantine), 2 rounds, a few hundred samples."""
    data = {**task.dataset, "max_train_samples": 400, "max_validation_samples": 128, "max_test_samples": 200}
    options = {**task.model_options, "widths": [4, 8]} if task.model == "resnet" else task.model_options
    return replace(
        task,
        dataset=data,
        model_options=options,
        providers=4,
        rounds=2,
        byzantine=min(task.byzantine, 1),
        score_samples=32,
    )


def scenario_of(task: PeerTask):
    """deai's side: the scenario ``deai simulate`` would run (whole protocol: verification r = 3,
    p = 0.1, LOO scoring, settlement; no inference requests, which Flower has no counterpart for)."""
    from deai.sim.scenario import parse_scenario

    adversaries = (
        [{"role": "data_provider", "behaviour": task.attack, "count": task.byzantine}]
        if task.attack and task.byzantine
        else []
    )
    return parse_scenario(
        {
            "seed": task.seed,
            "name": task.name,
            "dataset": task.dataset,
            "partition": task.partition,
            "model": {"name": task.model, "options": task.model_options},
            "network": {"data_providers": task.providers, "compute_providers": 3, "hosts": 0},
            "adversaries": adversaries,
            "task": {
                "rounds": task.rounds,
                "local_epochs": task.local_epochs,
                "batch_size": task.batch_size,
                "optimizer": task.optimizer,
                "lr": task.lr,
                "momentum": task.momentum,
                "weight_decay": task.weight_decay,
                "strategy": "fedavg",
                "aggregator": task.deai_aggregator,
                "scoring": "loo",
                "score_samples": task.score_samples,
                "verification": {"redundancy": 3, "sample_rate": 0.1},
                "min_providers": task.providers,
            },
            "inference": {"requests": 0},
        },
        source=task.name,
    )


def export(task: PeerTask, folder: Path) -> Path:
    """Write the scenario's plan for Flower: ``<folder>/task.npz`` (provider ``i``'s ``x{i}``/``y{i}``,
    ``test_x``/``test_y``, the initial state as ``init/<name>``) and ``task.json`` (the model, the
    recipe, the Byzantine rows and their attack). Returns the ``.json`` path."""
    from deai.protocol.task.model import load_checkpoint
    from deai.sim.plan import NetworkPlan

    plan = NetworkPlan.from_scenario(scenario_of(task))
    spec = plan.bundle.spec
    arrays: dict[str, np.ndarray] = {}
    for i, account in enumerate(plan.providers):
        part = spec.preprocessing.apply(plan.datasets[account.address])  # as deai's providers do
        arrays[f"x{i}"], arrays[f"y{i}"] = part.x.numpy(), part.y.numpy()
    arrays["test_x"], arrays["test_y"] = plan.splits.test.x.numpy(), plan.splits.test.y.numpy()
    for name, value in load_checkpoint(spec, plan.bundle.init).state_dict().items():
        arrays[f"init/{name}"] = value.numpy()
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / "task.npz", **arrays)
    byzantine = [i for i, a in enumerate(plan.providers) if a.address in plan.behaviours]
    meta = {
        "task": asdict(task),
        "model": spec.model,
        "in_features": spec.in_features,
        "num_classes": spec.num_classes,
        "model_kwargs": dict(spec.model_kwargs),
        "recipe": asdict(spec.train_config()),  # deai's providers' TrainConfig, field by field
        "byzantine": byzantine,
        "data": str(folder / "task.npz"),
    }
    path = folder / "task.json"
    path.write_text(json.dumps(meta))
    return path
