"""Flower's side of the comparison, run as its own process in Flower's venv (``.venv-peers/``).

    .venv-peers/bin/python benchmarks/peers/flower_side.py TASK.json RULE THREADS

``TASK.json`` is what :func:`benchmarks.peers.task.export` wrote from deai's plan of the same task:
the providers' parts, the test split and the initial weights. A legacy ``ServerApp`` (a built-in
strategy: ``fedavg``, ``krum``, ``multikrum``, ``bulyan``, ``median``, ``trimmed``) and a
``ClientApp`` (a ``NumPyClient``) run under Flower's Ray simulation engine (``run_simulation``), one
SuperNode per provider, ``THREADS`` CPUs for Ray with one CPU per client actor.

Same recipe as deai's providers: each client trains with :func:`deai.learn.training.local_train`
(deai's ``src`` on ``PYTHONPATH``: plain PyTorch, the same optimizer, lr, momentum, weight decay,
epochs and batch size) from the same model (:func:`deai.learn.models.build_model`, initial state from
deai's task bundle), and the server evaluates with :func:`deai.learn.objectives.evaluate` on the
same test split. The attack is a **strategy wrapper** (:class:`Attacked`): before the built-in rule
aggregates, the Byzantine clients' updates (the same rows as deai's: the last providers) are replaced
by the output of the same :meth:`deai.learn.attacks.base.Attack.craft` deai's providers call, on the
honest clients' updates of the round; a client whose attack does not train (ALIE, IPM) skips
training as deai's does. Prints one JSON line.
"""

from __future__ import annotations

import json
import os
import sys
import time
from functools import cache
from pathlib import Path

T0 = time.perf_counter()

import numpy as np  # noqa: E402
import torch  # noqa: E402

__all__ = ["client_fn", "main"]


@cache
def _meta() -> dict:
    """The task (its path in ``DEAI_PEER_TASK``: Ray's workers import this module and read it too)."""
    return json.loads(Path(os.environ["DEAI_PEER_TASK"]).read_text())


@cache
def _arrays(path: str) -> dict[str, np.ndarray]:
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def _model(meta: dict):
    from deai.learn.models import build_model

    model = build_model(meta["model"], meta["in_features"], meta["num_classes"], **meta["model_kwargs"])
    init = {k[5:]: torch.from_numpy(v) for k, v in _arrays(meta["data"]).items() if k.startswith("init/")}
    model.load_state_dict(init)
    return model


def _float_names(model) -> list[str]:
    return [k for k, v in model.state_dict().items() if v.is_floating_point()]


def _get(model) -> list[np.ndarray]:
    state = model.state_dict()
    return [state[k].detach().numpy().copy() for k in _float_names(model)]


def _set(model, weights: list[np.ndarray]) -> None:
    names = _float_names(model)
    model.load_state_dict(
        {k: torch.from_numpy(np.asarray(w)) for k, w in zip(names, weights, strict=True)}, strict=False
    )


def _dataset(meta: dict, x: np.ndarray, y: np.ndarray, name: str):
    from deai.learn.data import Dataset

    xt = torch.from_numpy(x)
    return Dataset(xt, torch.from_numpy(y), meta["num_classes"], tuple(xt.shape[1:]), name)


def client_fn(context):
    """Provider ``partition-id``'s client: deai's local recipe on its part of deai's split."""
    from flwr.client import NumPyClient

    from deai.learn.attacks import get_attack
    from deai.learn.training import TrainConfig, local_train

    torch.set_num_threads(1)
    meta, pid = _meta(), int(context.node_config["partition-id"])
    task = meta["task"]
    arrays = _arrays(meta["data"])
    data = _dataset(meta, arrays[f"x{pid}"], arrays[f"y{pid}"], f"provider{pid}")
    idle = pid in meta["byzantine"] and task["attack"] and not get_attack(task["attack"]).trains
    config = TrainConfig(**meta["recipe"])  # deai's spec.train_config(), field by field

    class Client(NumPyClient):
        def fit(self, parameters, config_in):
            if idle:  # ALIE, IPM: the update is crafted from the honest ones, nothing to train
                return parameters, len(data), {"pid": pid}
            model = _model(meta)
            _set(model, parameters)
            seed = task["seed"] * 1_000_003 + int(config_in.get("round", 0)) * 1_009 + pid
            local_train(model, data, config, seed=seed)
            return _get(model), len(data), {"pid": pid}

    return Client().to_client()


def _rule(name: str, n: int, f: int):
    from flwr.server import strategy as s

    common = {"fraction_evaluate": 0.0, "min_fit_clients": n, "min_available_clients": n}
    rules = {
        "fedavg": lambda: s.FedAvg(**common),
        "krum": lambda: s.Krum(**common, num_malicious_clients=f),
        "multikrum": lambda: s.Krum(**common, num_malicious_clients=f, num_clients_to_keep=n - f),
        "bulyan": lambda: s.Bulyan(**common, num_malicious_clients=f),
        "median": lambda: s.FedMedian(**common),
        "trimmed": lambda: s.FedTrimmedAvg(**common, beta=max(0.1, f / n) if f else 0.2),
    }
    return rules[name]()


def _delegate(name: str):
    def method(self, *args, **kwargs):
        return getattr(self.inner, name)(*args, **kwargs)

    return method


def _make_attacked():
    from flwr.common import ndarrays_to_parameters, parameters_to_ndarrays
    from flwr.server.strategy import Strategy

    from deai.learn.attacks import get_attack

    class Attacked(Strategy):
        """``inner`` (a built-in rule) with the Byzantine rows' updates replaced by deai's attack."""

        initialize_parameters = _delegate("initialize_parameters")
        configure_evaluate = _delegate("configure_evaluate")
        aggregate_evaluate = _delegate("aggregate_evaluate")
        evaluate = _delegate("evaluate")

        def __init__(self, inner, attack: str | None, byzantine: list[int], seed: int) -> None:
            self.inner, self.byzantine, self.seed = inner, set(byzantine), seed
            self.attack = get_attack(attack) if attack else None
            self.current: list[np.ndarray] | None = None

        def configure_fit(self, server_round, parameters, client_manager):
            self.current = parameters_to_ndarrays(parameters)
            jobs = self.inner.configure_fit(server_round, parameters, client_manager)
            for _, ins in jobs:
                ins.config["round"] = server_round
            return jobs

        def aggregate_fit(self, server_round, results, failures):
            if self.attack is not None and self.current is not None and results:
                results = self._attack(server_round, results)
            return self.inner.aggregate_fit(server_round, results, failures)

        def _attack(self, server_round, results):
            shapes = [w.shape for w in self.current]
            start = np.concatenate([w.ravel() for w in self.current])
            rows = {int(r.metrics["pid"]): (proxy, r) for proxy, r in results}
            delta = {
                pid: np.concatenate([w.ravel() for w in parameters_to_ndarrays(r.parameters)]) - start
                for pid, (_, r) in rows.items()
            }
            bad = sorted(p for p in rows if p in self.byzantine)
            honest = torch.from_numpy(np.stack([delta[p] for p in sorted(rows) if p not in self.byzantine]))
            own = torch.from_numpy(np.stack([delta[p] for p in bad])) if self.attack.trains else None
            gen = torch.Generator().manual_seed(self.seed * 7_919 + server_round)
            crafted = self.attack.craft(honest, own, len(bad), gen).numpy()
            for k, pid in enumerate(bad):
                flat, out, at = start + crafted[k], [], 0
                for shape in shapes:
                    size = int(np.prod(shape))
                    out.append(flat[at : at + size].reshape(shape).astype(np.float32))
                    at += size
                rows[pid][1].parameters = ndarrays_to_parameters(out)
            return [rows[p] for p in sorted(rows)]

    return Attacked


def main() -> None:
    from flower_side import client_fn as importable_client_fn  # by reference, for Ray's workers
    from flwr.client import ClientApp
    from flwr.common import ndarrays_to_parameters
    from flwr.server import ServerApp, ServerAppComponents, ServerConfig
    from flwr.simulation import run_simulation

    from deai.learn.objectives import evaluate

    os.environ["DEAI_PEER_TASK"] = sys.argv[1]
    meta, rule, threads = _meta(), sys.argv[2], int(sys.argv[3])
    task = meta["task"]
    torch.set_num_threads(threads)
    arrays = _arrays(meta["data"])
    test = _dataset(meta, arrays["test_x"], arrays["test_y"], "test")
    model = _model(meta)
    marks: list[float] = []
    accuracy: list[float] = []

    def evaluate_fn(server_round, weights, config):
        _set(model, weights)
        metrics = evaluate(model, test)
        if server_round >= 1:
            marks.append(time.perf_counter() - T0)
            accuracy.append(float(metrics["accuracy"]))
        return float(metrics["loss"]), {"accuracy": float(metrics["accuracy"])}

    n, f = task["providers"], len(meta["byzantine"]) if task["attack"] else 0

    def server_fn(context):
        inner = _rule(rule, n, f)
        inner.evaluate_fn = evaluate_fn
        inner.initial_parameters = ndarrays_to_parameters(_get(model))
        strategy = _make_attacked()(inner, task["attack"], meta["byzantine"], task["seed"])
        return ServerAppComponents(strategy=strategy, config=ServerConfig(num_rounds=task["rounds"]))

    run_simulation(
        server_app=ServerApp(server_fn=server_fn),
        client_app=ClientApp(client_fn=importable_client_fn),
        num_supernodes=n,
        backend_config={
            "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
            "init_args": {"num_cpus": threads},
        },
    )
    if len(accuracy) != task["rounds"]:
        raise SystemExit(f"flower finished {len(accuracy)} of {task['rounds']} rounds")
    out = {
        "system": "flower",
        "rule": rule,
        "accuracy": accuracy[-1],
        "rounds": len(accuracy),
        "round_marks": marks,
        "seconds": time.perf_counter() - T0,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
