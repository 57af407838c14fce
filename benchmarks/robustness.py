"""Robustness table: every attack x every aggregator on digits, 20 providers, 25% Byzantine.

Three partitions: IID, Dirichlet(0.5) label skew and McMahan's shards (two classes per provider,
the pathological split). The headline figure is the recommended ``default`` rule's worst drop under
any attack against its own attack-free run, per partition (target: within 3 points).

Runs :func:`deai.learn.federated.run_federated` for each (partition, aggregator, attack, seed).
That loop is built from the round steps the network's roles call (``local_step`` in
``ProviderPool.train``, ``aggregate_updates`` in the ``aggregate`` job kind, ``server_step`` in
``TaskCoordinator._finish_round``), so the table measures the code ``deai simulate``/``demo``/``up``
run (``tests/protocol/task/test_task_round_matches_learn.py`` checks a network task ends on the same
bits). It writes ``docs/results/robustness.md`` (mean ± std test accuracy, backdoor success rate, the
attack-free FedAvg baseline and the recommended default's worst drop) and a heat map PNG, and
prints the figures as JSON. ``default`` and the undefended ``mean`` declare ``f = 0`` (the default
then derives its ``f`` from the 20 rows: 5, see ``deai.learn.aggregators.default``); every other
rule is built for the true number of Byzantine providers.

    python benchmarks/robustness.py --workers 2     # the full table (3 seeds, 200 rounds; ~70 min)
    python benchmarks/robustness.py --reduced --workers 2  # every cell, 1 seed, 30 rounds (~2-5 min)
    python benchmarks/robustness.py --quick         # a small form (seconds), also what DEAI_SMALL=1 runs
    python benchmarks/robustness.py --seeds 5 --rounds 60 --workers 2
    # the default (and the previous rule) at the full setting (~10 min with 2 workers):
    python benchmarks/robustness.py --aggregators default root_gate+centered_clipping --seeds 3 \\
        --workers 2 --stem robustness_default
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

from deai.learn.aggregators import default_f
from deai.learn.attacks import ATTACKS as ATTACK_REGISTRY
from deai.learn.data import prepare
from deai.learn.errors import BadUpdates
from deai.learn.federated import run_federated
from deai.learn.partition import partition
from deai.learn.training import TrainConfig, deterministic

# The project's recommended default defense, by its name (see docs/learn.md and
# deai.learn.aggregators.default): the root gate (drop rows pointing away from the server's update on
# 100 clean samples, add that update as a row) before centered clipping with a radius of 1.5 x the
# median distance, here on provider-momentum updates (--client-momentum, default 0.9).
DEFAULT_DEFENSE = "default"
# Rules that declare f = 0: the undefended mean (it expects no attack) and the default (it derives
# f from the number of rows, as a task that declares nothing gets it).
F_ZERO = ("mean", DEFAULT_DEFENSE)
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
    DEFAULT_DEFENSE,
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
if "huge_row" in ATTACK_REGISTRY.names():  # one huge row in a colluding group (issue 15), when present
    ATTACKS.append("huge_row")
PARTITIONS = {"iid": {}, "dirichlet": {"alpha": 0.5}, "shards": {"classes_per_provider": 2}}
PARTITION_TITLES = {"iid": "IID", "dirichlet": "Dirichlet(0.5)", "shards": "shards(2)"}
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
    # The undefended mean is what a server that does not expect Byzantines runs: it declares f=0;
    # the default derives its f from the number of rows.
    f = 0 if job["aggregator"] in F_ZERO else job["byzantine"]
    local = TrainConfig(**job["local"])
    t = time.perf_counter()
    try:
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
    except BadUpdates as exc:
        # the model broke down (an undefended rule let a huge row through: NaN/inf everywhere); a
        # broken model is scored 0% so that a worst drop counts it
        return {
            **{k: job[k] for k in ("partition", "aggregator", "attack", "seed")},
            "accuracy": 0.0,
            "backdoor_success": 0.0 if attack == "backdoor" else None,
            "refused": None,
            "diverged": str(exc)[:200],
            "seconds": time.perf_counter() - t,
        }
    return {
        **{k: job[k] for k in ("partition", "aggregator", "attack", "seed")},
        "accuracy": None if res.refused else res.accuracy,
        "backdoor_success": res.backdoor_success,
        "refused": res.refused,
        "diverged": None,
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
                diverged = sum(bool(r["diverged"]) for r in sel)
                if diverged:
                    cell["diverged"] = diverged
                if k == "backdoor":
                    cell["backdoor_mean"], cell["backdoor_std"] = _stats(
                        [100 * r["backdoor_success"] for r in sel]
                    )
                cells[(p, a, k)] = cell
    return cells


def write_markdown(path: Path, cells: dict, aggregators, attacks, meta: dict) -> None:
    pm = (lambda m, s: f"{m:.1f} ± {s:.1f}") if meta["seeds"] > 1 else (lambda m, s: f"{m:.1f}")

    def fmt(c: dict) -> str:
        if "refused" in c:
            return "refused"
        if c.get("diverged") == meta["seeds"]:
            return "diverged"
        return pm(c["mean"], c["std"]) + ("*" if "diverged" in c else "")

    lines = [
        "# Robustness table",
        "",
        f"Digits (scikit-learn), {meta['providers']} providers, {meta['byzantine']} Byzantine "
        f"({100 * meta['byzantine'] // meta['providers']}%), MLP 64-64-10, {meta['rounds']} rounds, local "
        f"training {meta['local']}, provider momentum {meta['client_momentum']}, seeds {meta['seeds']}. "
        + ("Test accuracy in %, mean ± std over seeds. " if meta["seeds"] > 1 else "Test accuracy in %. ")
        + "Byzantine providers are drawn at random per seed. "
        "'refused' = the aggregator's assumption does not hold at this n and f "
        "(it raises instead of running); 'diverged' = the model broke down (NaN/inf updates), counted "
        "as 0% (* = in some seeds).",
        "",
        "Attack-free FedAvg baseline: "
        + ", ".join(f"{PARTITION_TITLES[p]} {v}" for p, v in meta["baseline"].items())
        + ".",
        "",
        *_default_lines(meta),
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
        "rate is the share of stamped non-target test images classified 0. `fltrust`, `root_gate` and "
        "`default` compare rows with the server's own update on 100 clean validation samples (the root "
        "data), with the same momentum as the providers'. `root_gate+centered_clipping` is the previous "
        "recommendation (median radius, no root row), kept for comparison.",
        "",
    ]
    for p in meta["partitions"]:
        lines += [
            f"## {p}" + {"dirichlet": " (alpha = 0.5)", "shards": " (two classes per provider)"}.get(p, ""),
            "",
        ]
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


def _default_lines(meta: dict) -> list[str]:
    """The headline: the default's drop under each attack vs its own attack-free run."""
    drops = meta["default_drops"]
    if not drops:
        return [f"(`{DEFAULT_DEFENSE}` or its attack-free run is not in this table.)"]
    attacks = list(next(iter(drops.values())))
    lines = [
        f"Recommended `{DEFAULT_DEFENSE}` (f derived from the {meta['providers']} rows: "
        f"{default_f(meta['providers'], 0)}): drop in points vs its own "
        "attack-free run (positive = worse; target: within 3 points under every attack):",
        "",
        "| partition | attack-free | " + " | ".join(attacks) + " | worst |",
        "|---" * (len(attacks) + 3) + "|",
    ]
    for p, row in drops.items():
        w = meta["default_worst_drop"][p]
        lines.append(
            f"| {PARTITION_TITLES[p]} | {meta['default_clean'][p]:.1f} | "
            + " | ".join(f"{v:.1f}" for v in row.values())
            + f" | **{w['drop']:.1f}** ({w['attack']}) |"
        )
    return lines


def write_heatmap(path: Path, cells: dict, aggregators, attacks) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parts = sorted({p for p, _, _ in cells}, key=list(PARTITIONS).index)
    fig, axes = plt.subplots(
        1, len(parts), figsize=(6 * len(parts) + 2, 0.45 * len(aggregators) + 2), sharey=True, squeeze=False
    )
    for col, (ax, p) in enumerate(zip(axes[0], parts, strict=True)):
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
    ap.add_argument(
        "--stem", help="output file name without extension (default: robustness[_quick|_reduced])"
    )
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

    def drops_vs_own(aggregator: str, p: str) -> dict[str, float]:
        """Attack -> the aggregator's attack-free accuracy minus its accuracy under that attack."""
        clean = cells.get((p, aggregator, "none"), {}).get("mean")
        if clean is None:
            return {}
        return {
            k: clean - cells[(p, aggregator, k)]["mean"]
            for k in attacks
            if k != "none" and "mean" in cells.get((p, aggregator, k), {})
        }

    drops = {p: drops_vs_own(DEFAULT_DEFENSE, p) for p in args.partitions}
    drops = {p: d for p, d in drops.items() if d}
    worst = {p: {"drop": max(d.values()), "attack": max(d, key=d.__getitem__)} for p, d in drops.items()}
    cmd = "python benchmarks/robustness.py " + " ".join(argv if argv is not None else sys.argv[1:])
    meta = {
        **base,
        "seeds": args.seeds,
        "baseline": {
            p: f"{m:.1f} ± {s:.1f}" if args.seeds > 1 else f"{m:.1f}" for p, (m, s) in baseline.items()
        },
        "partitions": args.partitions,
        "default_drops": drops,
        "default_worst_drop": worst,
        "default_clean": {p: cells[(p, DEFAULT_DEFENSE, "none")]["mean"] for p in drops},
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
        # the headline: the default's drop vs its own attack-free run, per partition and attack
        "default_drops_vs_own_clean_points": drops,
        "default_worst_drop_points": worst,
        "default_worst_drop_vs_fedavg_points": {p: worst_drop(DEFAULT_DEFENSE, p) for p in args.partitions},
        "worst_drop_points": {a: {p: worst_drop(a, p) for p in args.partitions} for a in aggregators},
        "worst_drop_vs_own_clean_points": {
            a: {p: max(d.values()) for p in args.partitions if (d := drops_vs_own(a, p))} for a in aggregators
        },
        "cells": [{"partition": p, "aggregator": a, "attack": k, **c} for (p, a, k), c in cells.items()],
        "wall_seconds": wall,
    }
    if not args.no_write:
        args.out.mkdir(parents=True, exist_ok=True)
        suffix = "_quick" if args.quick else "_reduced" if args.reduced else ""
        stem = args.stem or f"robustness{suffix}"
        write_markdown(args.out / f"{stem}.md", cells, aggregators, attacks, meta)
        write_heatmap(args.out / f"{stem}.png", cells, aggregators, attacks)
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
