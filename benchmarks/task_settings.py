"""Task settings through the network: declared preprocessing, server momentum, the join grace.

Every run is a scenario through the whole protocol (:func:`deai.sim.runner.run_scenario`, memory
transport), and every figure is a ratio against a baseline run in the same invocation:

- **preprocessing**: the bundled ``clean`` scenario (digits) with the declared per-feature
  standardization (statistics of the creator's validation split, applied by every provider to its
  raw part) against the same task declaring ``none`` (raw features): test accuracy ratio;
- **server momentum**: ``byzantine`` cut to a few rounds with ``diloco`` (server_lr 1, momentum
  0.9) on the default defense against ``fedavg``: mean test accuracy ratio over seeds;
- **join grace**: a network with half of its providers missing, ledger milliseconds from the
  task's creation to its first round with ``join_grace_ms`` 10 s against 0 (the whole window).

    python benchmarks/task_settings.py            # 3 seeds, 4 rounds (a few minutes on 2 cores)
    python benchmarks/task_settings.py --small    # 1 seed, 2 rounds (what DEAI_SMALL=1 runs)

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from deai.sim.plan import NetworkPlan
from deai.sim.runner import run_scenario
from deai.sim.scenario import parse_scenario

ROOT = Path(__file__).resolve().parents[1]


def _doc(name: str, rounds: int, seed: int, **task: Any) -> dict:
    doc = yaml.safe_load((ROOT / "scenarios" / f"{name}.yaml").read_text())
    doc["seed"] = seed
    doc["task"] = {**doc["task"], "rounds": rounds, **task}
    doc["inference"] = {**doc["inference"], "requests": 0}
    return doc


def _accuracy(doc: dict) -> float:
    return float(run_scenario(parse_scenario(doc))["test_accuracy"])


def preprocessing(rounds: int, seeds: list[int]) -> dict[str, Any]:
    declared, raw = [], []
    for seed in seeds:
        declared.append(_accuracy(_doc("clean", rounds, seed)))
        doc = _doc("clean", rounds, seed)
        doc["dataset"] = {**doc["dataset"], "standardize": False}
        raw.append(_accuracy(doc))
    mean_d, mean_r = sum(declared) / len(declared), sum(raw) / len(raw)
    return {"standardize": declared, "none": raw, "ratio": mean_d / mean_r if mean_r else None}


def momentum(rounds: int, seeds: list[int]) -> dict[str, Any]:
    base, mom = [], []
    for seed in seeds:
        base.append(_accuracy(_doc("byzantine", rounds, seed)))
        options = {"server_lr": 1.0, "momentum": 0.9}
        mom.append(_accuracy(_doc("byzantine", rounds, seed, strategy="diloco", strategy_options=options)))
    mean_b, mean_m = sum(base) / len(base), sum(mom) / len(mom)
    return {"fedavg": base, "diloco_momentum_0.9": mom, "ratio": mean_m / mean_b}


def _first_round_ms(grace: int, root: Path) -> int:
    doc = _doc("clean", 1, 1, min_providers=2, windows={"join_grace_ms": grace})
    doc["network"] = {**doc["network"], "data_providers": 4}
    plan = NetworkPlan.from_scenario(parse_scenario(doc))
    plan.providers = plan.providers[:2]  # the other half never comes
    net = plan.memory(root)
    task = net.submit(plan.creator, plan.bundle)
    start = net.clock.now
    net.run(lambda: net.status(task).round >= 1)
    return net.clock.now - start


def join_grace() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        grace = _first_round_ms(10_000, Path(tmp) / "grace")
        whole = _first_round_ms(0, Path(tmp) / "whole")
    return {"grace_ms": grace, "whole_window_ms": whole, "ratio": grace / whole}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="1 seed, 2 rounds")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    small = args.small or os.environ.get("DEAI_SMALL") == "1"
    rounds, seeds = (2, [2]) if small else (args.rounds, list(range(2, 2 + args.seeds)))
    out = {
        "rounds": rounds,
        "seeds": seeds,
        "preprocessing": preprocessing(rounds, seeds),
        "server_momentum": momentum(rounds, seeds),
        "join_grace": join_grace(),
    }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
