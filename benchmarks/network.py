"""The network's cost: one federated round through the full protocol vs. the same round as a plain loop.

Prints JSON with three parts:

- ``round``: seconds per round of a task through the full protocol (signed envelopes and statements,
  the ledger, update blobs, verified aggregation and scoring jobs at r = 3, p = 0.1 with the robust
  aggregator, checkpoint and payout root on the ledger), on the in-memory transport and over HTTP
  between processes on loopback, each as a **ratio** of the same round's training and aggregation
  done as a plain PyTorch loop in one process (``train_many`` + the aggregator + the strategy), timed
  in the same run. The protocol's cost is mostly a fixed cost per round (messages, ledger writes,
  blob moves, job execution and scoring, request hops), so the ratio depends on how long local
  training takes: ``light`` (digits, MLP 64, 1 local epoch, a few ms: overhead dominates),
  ``heavy`` (MLP 256x256, 5 epochs, ~0.1 s) and ``long`` (MLP 512x512, 25 epochs, seconds).
  ``overhead_seconds`` is the protocol round minus the plain round.
- ``simulation``: in-memory networks of 100 and 1,000 providers (synthetic data, 40 samples each):
  seconds per round and peak resident memory (each size in a fresh subprocess,
  ``resource.getrusage``), and the per-provider growth, to show it is linear.

    python benchmarks/network.py              # full
    DEAI_SMALL=1 python benchmarks/network.py # small form (fewer rounds; simulation 100 and 300)
    python benchmarks/network.py --memory-only --workloads light  # the fixed cost per round in memory
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

SMALL = os.environ.get("DEAI_SMALL") == "1"
WORKLOADS = {
    "light": {"model_kwargs": {"hidden": [64]}, "local_epochs": 1},
    "heavy": {"model_kwargs": {"hidden": [256, 256]}, "local_epochs": 5},
    "long": {"model_kwargs": {"hidden": [512, 512]}, "local_epochs": 25},
}


def _parties(splits, n: int, m: int, tag: str):
    from deai.core.accounts import Account
    from deai.learn.partition import partition

    providers = [Account.from_seed(f"{tag}p", i) for i in range(n)]
    computes = [Account.from_seed(f"{tag}c", i) for i in range(m)]
    creator = Account.from_seed(f"{tag}creator", 0)
    parts = partition(splits.train.y, n, "iid", seed=0)
    data = {p.address: splits.train.subset(parts[i]) for i, p in enumerate(providers)}
    return providers, computes, creator, data


def _bundle(splits, n: int, rounds: int, workload: dict, **extra):
    from deai.node.user.submit import make_task
    from deai.protocol.task.spec import Windows

    return make_task(
        splits.val,
        rounds=rounds,
        batch_size=32,
        lr=0.05,
        aggregator="trimmed_mean",
        f=1,
        redundancy=3,
        sample_rate=0.1,
        scoring="loo",
        budget=10**6,
        min_providers=n,
        max_providers=n,
        windows=Windows(join_ms=120_000, train_ms=120_000, commit_ms=30_000, reveal_ms=30_000),
        **workload,
        **extra,
    )


def plain_round(splits, data, bundle, repeats: int) -> float:
    """The same round as a plain loop: vectorized local training, robust aggregation, strategy."""
    from deai.learn.aggregators import get_aggregator
    from deai.learn.strategies import get_strategy
    from deai.learn.training import TrainConfig, get_flat, train_many
    from deai.protocol.task.model import load_checkpoint
    from deai.protocol.task.provider import provider_seed

    spec = bundle.spec
    model = load_checkpoint(spec, bundle.init)
    start = get_flat(model)
    cfg = TrainConfig(epochs=spec.local_epochs, batch_size=spec.batch_size, lr=spec.lr)
    agg, strategy = get_aggregator(spec.aggregator, f=spec.f), get_strategy(spec.strategy)
    addresses = sorted(data)
    best = float("inf")
    for _ in range(repeats + 1):  # the first run warms up
        t0 = time.perf_counter()
        deltas, _ = train_many(
            model,
            start,
            [data[a] for a in addresses],
            cfg,
            [provider_seed(spec.task_id, 1, a) for a in addresses],
        )
        strategy(start, agg(deltas, torch.tensor([float(len(data[a])) for a in addresses])))
        best = min(best, time.perf_counter() - t0)
    return best


def _median_gap(times: list[float]) -> float:
    """The median time between consecutive round ends (round 1, with joining and warm-up, is only
    a start mark); the median resists the other work on a shared machine."""
    gaps = sorted(b - a for a, b in itertools.pairwise(times))
    return gaps[len(gaps) // 2]


def _per_round(history: list[dict], key: str = "time") -> float:
    return _median_gap([h[key] / 1000 for h in history])


def memory_round(splits, parties, bundle) -> float:
    from deai.node.launch.inprocess import LocalNetwork

    providers, computes, creator, data = parties
    net = LocalNetwork(tempfile.mkdtemp(prefix="bench-net-"))
    net.fund([a.address for a in [*providers, *computes, creator, net.hub_account]], 10**7)
    net.add_daemon("data", {"data_provider": providers}, options={"datasets": data})
    net.add_daemon("compute", {"compute_provider": computes})
    task = net.submit(creator, bundle)
    stamps: list[float] = []
    coord_round = [0]

    def stamp() -> None:
        coord = net.hub.coordinators.get(task)
        if coord is not None and len(coord.state.rounds) > coord_round[0]:
            coord_round[0] = len(coord.state.rounds)
            stamps.append(time.perf_counter())

    net.run(net.task_done(task), on_step=stamp)
    return _median_gap(stamps)


def http_round(splits, parties, bundle, tag: str) -> float:
    from deai.node.launch.processes import ProcessNetwork
    from deai.node.user.submit import submit_task

    providers, computes, creator, data = parties
    with ProcessNetwork(tempfile.mkdtemp(prefix="bench-http-")) as net:
        net.start_hub()
        net.fund([a.address for a in [*providers, *computes, creator, net.hub_account]], 10**7)
        net.start_node("data", ["data_provider"], [f"seed:{tag}p:0-{len(providers) - 1}"], data=data)
        net.start_node("compute", ["compute_provider"], [f"seed:{tag}c:0-{len(computes) - 1}"])
        client = net.client(creator)
        task = submit_task(client, creator, bundle)
        while (status := client.call("task.status", {"task": task}))["phase"] not in ("done", "failed"):
            time.sleep(0.1)
        if status["phase"] != "done":
            raise RuntimeError(status["reason"])
        return _per_round(status["history"])


def simulation_child(n: int, rounds: int) -> dict:
    """One in-memory network of ``n`` providers (run in a fresh process for a clean peak RSS)."""
    from sklearn.datasets import make_classification

    from deai.learn.data import Dataset, Splits

    torch.set_num_threads(1)
    x, y = make_classification(
        n_samples=n * 40 + 400, n_features=32, n_informative=16, n_classes=4, random_state=0
    )
    full = Dataset(torch.tensor(x, dtype=torch.float32), torch.tensor(y), 4, (32,), "synthetic")
    splits = Splits(full.subset(range(400, len(full))), full.subset(range(200)), full.subset(range(200, 400)))
    providers, computes, creator, data = _parties(splits, n, 4, f"sim{n}")
    bundle = _bundle(splits, n, rounds, WORKLOADS["light"])
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    per_round = memory_round(splits, (providers, computes, creator, data), bundle)
    return {
        "providers": n,
        "seconds_per_round": round(per_round, 3),
        "total_seconds": round(time.perf_counter() - t0, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rss_before_mb": round(rss0 / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=3 if SMALL else 5)
    parser.add_argument("--providers", type=int, default=10)
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help="which of light,heavy,long")
    parser.add_argument("--memory-only", action="store_true", help="plain and in-memory rounds only")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(simulation_child(args.child, 3)))
        return
    from deai.learn.data import prepare

    torch.set_num_threads(1)
    splits = prepare("digits", seed=0)
    out: dict = {"providers": args.providers, "compute_providers": 4, "r": 3, "p": 0.1, "round": {}}
    for name in args.workloads.split(","):
        workload = WORKLOADS[name]
        tag = f"b{name}"
        parties = _parties(splits, args.providers, 4, tag)
        bundle = _bundle(splits, args.providers, args.rounds, workload)
        plain = plain_round(splits, parties[3], bundle, repeats=3)
        mem = memory_round(splits, parties, bundle)
        if args.memory_only:
            out["round"][name] = {
                "plain_seconds": round(plain, 4),
                "memory_seconds": round(mem, 4),
                "memory_overhead_seconds": round(mem - plain, 3),
                "goal_overhead_seconds": 0.1,
            }
            continue
        http = http_round(splits, parties, bundle, tag)
        out["round"][name] = {
            "plain_seconds": round(plain, 4),
            "memory_seconds": round(mem, 4),
            "http_seconds": round(http, 4),
            "memory_overhead_seconds": round(mem - plain, 3),
            "http_overhead_seconds": round(http - plain, 3),
            "memory_ratio": round(mem / plain, 2),
            "http_ratio": round(http / plain, 2),
            "goal": {"memory": 1.2, "http": 1.5},
        }
    if args.memory_only:
        print(json.dumps(out, indent=2))
        return
    sims = []
    for n in (100, 300) if SMALL else (100, 1000):
        proc = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--child", str(n)],
            capture_output=True,
            text=True,
            check=True,
        )
        sims.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    a, b = sims
    growth = (b["peak_rss_mb"] - a["peak_rss_mb"]) / (b["providers"] - a["providers"])
    out["simulation"] = {
        "runs": sims,
        "seconds_per_round_per_provider": [round(s["seconds_per_round"] / s["providers"], 5) for s in sims],
        "rss_mb_per_extra_provider": round(growth, 4),
        "time_ratio_vs_provider_ratio": round(
            (b["seconds_per_round"] / a["seconds_per_round"]) / (b["providers"] / a["providers"]), 3
        ),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
