"""Robustness table: every attack x every aggregator on digits, 20 providers, 25% Byzantine.

Runs :func:`deai.learn.federated.run_federated` for each (partition, aggregator, attack, seed).
That loop is built from the round steps the network's roles call (``local_step`` in
``ProviderPool.train``, ``aggregate_updates`` in the ``aggregate`` job kind, ``server_step`` in
``TaskCoordinator._finish_round``), so the table measures the code ``deai simulate``/``demo``/``up``
run (``tests/protocol/task/test_task_round_matches_learn.py`` checks a network task ends on the same
bits). It writes ``docs/results/robustness.md`` (mean ± std test accuracy, backdoor success rate, the
attack-free FedAvg baseline and the recommended default's worst drop) and a heat map PNG, and
prints the figures as JSON.

    python benchmarks/robustness.py --workers 2     # the full table (3 seeds, 200 rounds; ~20 min)
    python benchmarks/robustness.py --reduced       # every cell, 1 seed, 30 rounds (~10 min, 1 core)
    python benchmarks/robustness.py --quick         # a small form (seconds), also what DEAI_SMALL=1 runs
    python benchmarks/robustness.py --seeds 5 --rounds 60 --workers 2
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

from deai.learn.data import prepare
from deai.learn.federated import run_federated
from deai.learn.partition import partition
from deai.learn.training import TrainConfig, deterministic

# The project's recommended default defense (see docs/learn.md): the root gate (drop rows pointing
# away from the server's update on 100 clean samples) before centered clipping with an adaptive
# radius, on provider-momentum updates (--client-momentum, default 0.9).
DEFAULT_DEFENSE = "root_gate+centered_clipping"
AGGREGATORS = [
    "mean",
    "median",
    "trimmed_mean",
    "geometric_median",
    "krum",
    "multi_krum",
    "bulyan",
    "centered_clipping",
    "fltrust",
    "foolsgold",
    "bucketing(s=2)+centered_clipping",
    "nnm+trimmed_mean",
    "nnm+centered_clipping",
    "root_gate+centered_clipping",
]
ATTACKS = [
    "none",
    "label_flip",
    "sign_flip",
    "gaussian_noise",
    "alie",
    "alie(z=1.5)",
    "ipm",
    "ipm(epsilon=0.5)",
    "backdoor",
    "free_rider",
    "sybil_clones",
]
PARTITIONS = {"iid": {}, "dirichlet": {"alpha": 0.5}}
QUICK_AGGREGATORS = ["mean", "median", "krum", DEFAULT_DEFENSE]
QUICK_ATTACKS = ["none", "alie", "ipm", "backdoor"]


def run_one(job: dict) -> dict:
    """One cell of the table for one seed (runs in a worker process)."""
    torch.set_num_threads(1)
    splits = prepare("digits", seed=job["seed"])
    idx = partition(
        splits.train.y, job["providers"], job["partition"], seed=job["seed"], **PARTITIONS[job["partition"]]
    )
    parts = [splits.train.subset(i) for i in idx]
    attack = None if job["attack"] == "none" else job["attack"]
    rng = np.random.default_rng(job["seed"])
    byz = sorted(rng.choice(job["providers"], job["byzantine"], replace=False).tolist()) if attack else []
    # The undefended mean is what a server that does not expect Byzantines runs: it declares f=0.
    f = 0 if job["aggregator"] == "mean" else job["byzantine"]
    local = TrainConfig(**job["local"])
    t = time.perf_counter()
    with deterministic():
        res = run_federated(
            parts,
            splits.test,
            model="mlp",
            rounds=job["rounds"],
            local=local,
            aggregator=job["aggregator"],
            f=f,
            byzantine=byz,
            attack=attack,
            client_momentum=job["client_momentum"],
            root_data=splits.val.subset(range(min(100, len(splits.val)))),
            seed=job["seed"],
        )
    return {
        **{k: job[k] for k in ("partition", "aggregator", "attack", "seed")},
        "accuracy": None if res.refused else res.accuracy,
        "backdoor_success": res.backdoor_success,
        "refused": res.refused,
        "seconds": time.perf_counter() - t,
    }


def _stats(vals: list[float]) -> tuple[float, float]:
    arr = np.asarray(vals, dtype=float)
    return float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else 0.0


def summarize(rows: list[dict], aggregators: list[str], attacks: list[str]) -> dict:
    cells: dict = {}
    for p in PARTITIONS:
        for a in aggregators:
            for k in attacks:
                sel = [r for r in rows if (r["partition"], r["aggregator"], r["attack"]) == (p, a, k)]
                if not sel:
                    continue
                if sel[0]["refused"]:
                    cells[(p, a, k)] = {"refused": sel[0]["refused"]}
                    continue
                m, s = _stats([100 * r["accuracy"] for r in sel])
                cell = {"mean": m, "std": s}
                if k == "backdoor":
                    cell["backdoor_mean"], cell["backdoor_std"] = _stats(
                        [100 * r["backdoor_success"] for r in sel]
                    )
                cells[(p, a, k)] = cell
    return cells


def write_markdown(path: Path, cells: dict, aggregators, attacks, meta: dict) -> None:
    pm = (lambda m, s: f"{m:.1f} ± {s:.1f}") if meta["seeds"] > 1 else (lambda m, s: f"{m:.1f}")
    fmt = lambda c: "refused" if "refused" in c else pm(c["mean"], c["std"])  # noqa: E731
    lines = [
        "# Robustness table",
        "",
        f"Digits (scikit-learn), {meta['providers']} providers, {meta['byzantine']} Byzantine "
        f"({100 * meta['byzantine'] // meta['providers']}%), MLP 64-64-10, {meta['rounds']} rounds, local "
        f"training {meta['local']}, provider momentum {meta['client_momentum']}, seeds {meta['seeds']}. "
        + ("Test accuracy in %, mean ± std over seeds. " if meta["seeds"] > 1 else "Test accuracy in %. ")
        + "Byzantine providers are drawn at random per seed. "
        "'refused' = the aggregator's assumption does not hold at this n and f "
        "(it raises instead of running).",
        "",
        f"Attack-free FedAvg baseline: IID {meta['baseline']['iid']}, "
        f"Dirichlet(0.5) {meta['baseline']['dirichlet']}.",
        f"Recommended default `{DEFAULT_DEFENSE}`: worst drop vs the baseline over all attacks: "
        + ", ".join(f"{p} {v:.1f} points" for p, v in meta["default_worst_drop"].items())
        + " (target: within 3 points).",
        "",
        f"Reproduce: `{meta['command']}` ({meta['wall_seconds']:.0f} s on this machine).",
        "",
        "Code path: `deai.learn.federated.run_federated`, whose rounds are the steps the network's roles "
        "call: `local_step` (local training, provider momentum, the attack step; "
        "`ProviderPool.train`), `aggregate_updates` (the `aggregate` job kind) and `server_step` "
        "(`TaskCoordinator._finish_round`). A network task configured the same way ends on the same "
        "bits (`tests/protocol/task/test_task_round_matches_learn.py`). What the table has that a network "
        "task does not: provider momentum (no task-spec field), omniscient attackers (a network "
        "collusion sees only the honest providers its own process hosts) and aggregator state across "
        "rounds (centered clipping's centre, FoolsGold's history: the network builds the aggregator "
        "afresh for each round's job).",
        "",
        "Every aggregator runs in the same loop (same local training and provider momentum); the "
        "baseline is plain FedAvg (sample-weighted mean, no provider momentum) with no Byzantine "
        "provider. The undefended `mean` declares f = 0 (it expects no attack). Attacks: "
        "`alie` uses Baruch et al.'s z for n = 20, f = 5 (z = 0.52), `alie(z=1.5)` a stronger shift; "
        "`ipm` sends -0.1 x the honest mean, `ipm(epsilon=0.5)` -0.5 x; `gaussian_noise` sigma = 1; "
        "`free_rider` sends zeros; `sybil_clones` sends one label-flipped update from all five; "
        "`backdoor` stamps 4 pixels on half of each attacker's samples (target class 0); its success "
        "rate is the share of stamped non-target test images classified 0. `fltrust` and `root_gate` "
        "compare rows with the server's own update on 100 clean validation samples (the root data), "
        "with the same momentum as the providers'.",
        "",
    ]
    for p in PARTITIONS:
        lines += [f"## {p}" + (" (alpha = 0.5)" if p == "dirichlet" else ""), ""]
        lines.append("| aggregator | " + " | ".join(attacks) + " | backdoor success |")
        lines.append("|---" * (len(attacks) + 2) + "|")
        for a in aggregators:
            row = [fmt(cells[(p, a, k)]) if (p, a, k) in cells else "" for k in attacks]
            bd = cells.get((p, a, "backdoor"), {})
            bds = pm(bd["backdoor_mean"], bd["backdoor_std"]) if "backdoor_mean" in bd else ""
            lines.append(f"| `{a}` | " + " | ".join(row) + f" | {bds} |")
        lines.append("")
    refused = sorted({(a, c["refused"]) for (_, a, _), c in cells.items() if "refused" in c})
    if refused:
        lines += ["Refusals:", ""] + [f"- `{a}`: {msg}" for a, msg in refused] + [""]
    path.write_text("\n".join(lines))


def write_heatmap(path: Path, cells: dict, aggregators, attacks) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        1, len(PARTITIONS), figsize=(6 * len(PARTITIONS) + 2, 0.45 * len(aggregators) + 2), sharey=True
    )
    for col, (ax, p) in enumerate(zip(np.atleast_1d(axes), PARTITIONS, strict=True)):
        grid = np.full((len(aggregators), len(attacks)), np.nan)
        for i, a in enumerate(aggregators):
            for j, k in enumerate(attacks):
                c = cells.get((p, a, k), {})
                grid[i, j] = c.get("mean", np.nan)
        im = ax.imshow(grid, vmin=0, vmax=100, cmap="RdYlGn", aspect="auto")
        for i in range(grid.shape[0]):
            for j in range(grid.shape[1]):
                refused = "refused" in cells.get((p, aggregators[i], attacks[j]), {})
                text = "refused" if refused else ("" if np.isnan(grid[i, j]) else f"{grid[i, j]:.0f}")
                ax.text(j, i, text, ha="center", va="center", fontsize=6 if refused else 7)
        ax.set_xticks(range(len(attacks)), attacks, rotation=45, ha="right", fontsize=8)
        if col == 0:
            ax.set_yticks(range(len(aggregators)), aggregators, fontsize=8)
        ax.set_title(f"digits, {p}: test accuracy (%)")
    fig.colorbar(im, ax=axes, shrink=0.8)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--providers", type=int, default=20)
    ap.add_argument("--byzantine", type=int, default=None, help="default: 25%% of providers")
    ap.add_argument("--client-momentum", type=float, default=0.9)
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--steps", type=int, default=None, help="local steps per round (overrides --epochs)")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="a small form: few aggregators/attacks, 1 seed")
    ap.add_argument(
        "--reduced", action="store_true", help="every cell, 1 seed, 30 rounds (writes robustness_reduced.*)"
    )
    ap.add_argument("--out", type=Path, default=Path("docs/results"))
    ap.add_argument("--no-write", action="store_true", help="print JSON only")
    ap.add_argument("--aggregators", nargs="+", help="only these registry names (default: the table's)")
    ap.add_argument("--attacks", nargs="+", help="only these attacks (default: the table's)")
    ap.add_argument("--partitions", nargs="+", choices=list(PARTITIONS), default=list(PARTITIONS))
    args = ap.parse_args(argv)
    if os.environ.get("DEAI_SMALL") == "1":
        args.quick = True
    aggregators, attacks = (QUICK_AGGREGATORS, QUICK_ATTACKS) if args.quick else (AGGREGATORS, ATTACKS)
    aggregators, attacks = args.aggregators or aggregators, args.attacks or attacks
    if args.quick:
        args.seeds, args.rounds = 1, min(args.rounds, 25)
    elif args.reduced:
        args.seeds, args.rounds = 1, min(args.rounds, 30)
    byzantine = args.providers // 4 if args.byzantine is None else args.byzantine
    local = {"epochs": args.epochs, "steps": args.steps, "batch_size": args.batch_size, "lr": args.lr}
    base = {"providers": args.providers, "byzantine": byzantine, "rounds": args.rounds, "local": local}
    base["client_momentum"] = args.client_momentum
    jobs = [
        {**base, "partition": p, "aggregator": a, "attack": k, "seed": s}
        for p in args.partitions
        for a in aggregators
        for k in attacks
        for s in range(args.seeds)
    ]
    # FedAvg without momentum and without attack: the plain baseline the targets refer to.
    jobs += [
        {
            **base,
            "client_momentum": 0.0,
            "partition": p,
            "aggregator": "mean",
            "attack": "none",
            "seed": s,
            "baseline": True,
        }
        for p in args.partitions
        for s in range(args.seeds)
    ]
    t0 = time.perf_counter()
    if args.workers > 1:
        with ProcessPoolExecutor(args.workers) as pool:
            rows = list(pool.map(run_one, jobs, chunksize=4))
    else:
        rows = [run_one(j) for j in jobs]
    wall = time.perf_counter() - t0
    for r, j in zip(rows, jobs, strict=True):
        r["baseline"] = j.get("baseline", False)
    table_rows = [r for r in rows if not r["baseline"]]
    cells = summarize(table_rows, aggregators, attacks)
    baseline = {
        p: _stats([100 * r["accuracy"] for r in rows if r["baseline"] and r["partition"] == p])
        for p in args.partitions
    }

    def worst_drop(aggregator: str, p: str) -> float:
        accs = [
            cells[(p, aggregator, k)]["mean"] for k in attacks if "mean" in cells.get((p, aggregator, k), {})
        ]
        return baseline[p][0] - min(accs) if accs else float("nan")

    worst = {p: worst_drop(DEFAULT_DEFENSE, p) for p in args.partitions}
    cmd = "python benchmarks/robustness.py " + " ".join(argv if argv is not None else sys.argv[1:])
    meta = {
        **base,
        "seeds": args.seeds,
        "baseline": {
            p: f"{m:.1f} ± {s:.1f}" if args.seeds > 1 else f"{m:.1f}" for p, (m, s) in baseline.items()
        },
        "default_worst_drop": worst,
        "command": cmd.strip(),
        "wall_seconds": wall,
    }
    out = {
        "benchmark": "robustness",
        "setting": {
            k: meta[k] for k in ("providers", "byzantine", "rounds", "local", "client_momentum", "seeds")
        },
        "baseline_fedavg": {p: {"mean": m, "std": s} for p, (m, s) in baseline.items()},
        "default_defense": DEFAULT_DEFENSE,
        "default_worst_drop_points": worst,
        "worst_drop_points": {a: {p: worst_drop(a, p) for p in args.partitions} for a in aggregators},
        "cells": [{"partition": p, "aggregator": a, "attack": k, **c} for (p, a, k), c in cells.items()],
        "wall_seconds": wall,
    }
    if not args.no_write:
        args.out.mkdir(parents=True, exist_ok=True)
        suffix = "_quick" if args.quick else "_reduced" if args.reduced else ""
        write_markdown(args.out / f"robustness{suffix}.md", cells, aggregators, attacks, meta)
        write_heatmap(args.out / f"robustness{suffix}.png", cells, aggregators, attacks)
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
