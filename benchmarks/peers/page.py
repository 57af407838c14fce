"""The results page of :mod:`flower` (``docs/results/peers.md``), rendered from one run's JSON."""

from __future__ import annotations

__all__ = ["render"]

GOALS = "deai whole protocol <= 1.0x Flower's wall time and <= 0.5x its peak memory on the CNN task"


def _f(value, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _timing(out: dict) -> list[str]:
    rows = [
        "| task | system | wall s | s / round | peak MB (tree) | test accuracy |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for name, t in out["tasks"].items():
        for system in ("deai", "flower"):
            s = t[system]
            rows.append(
                f"| {name} | {system} | {_f(s['wall_seconds'], 1)} | {_f(s['seconds_per_round'])} "
                f"| {_f(s['peak_rss_mb'], 0)} | {_f(s['accuracy'], 3)} |"
            )
        r = t["ratio_deai_over_flower"]
        rows.append(
            f"| {name} | **deai / Flower** | **{_f(r['wall_seconds'])}x** "
            f"| **{_f(r['seconds_per_round'])}x** | **{_f(r['peak_rss_mb'])}x** | |"
        )
    return rows


def _byzantine(out: dict) -> list[str]:
    b = out.get("byzantine")
    if not b:
        return []
    rules = sorted({r for a in b["attacks"].values() for r in a["flower"]})
    rows = [
        "| attack | deai default | "
        + " | ".join(f"Flower {r}" for r in rules)
        + " | best Flower | margin (points) |",
        "|---|---:|" + "---:|" * len(rules) + "---|---:|",
    ]
    for attack, a in b["attacks"].items():
        cells = [
            _f(a["flower"][r].get("accuracy"), 3) if "accuracy" in a["flower"].get(r, {}) else "failed"
            for r in rules
        ]
        rows.append(
            f"| {attack} | {_f(a['deai']['accuracy'], 3)} | "
            + " | ".join(cells)
            + f" | {a['flower_best_rule']} | {_f(a['margin_points'], 1)} |"
        )
    rows.append("")
    rows.append(f"Worst attack for deai's margin: **{b['worst_attack']}**.")
    return rows


def render(out: dict, command: str) -> str:
    load = out["load_average"]
    lines = [
        "# deai side by side with Flower",
        "",
        "The same task in both systems from one description (`benchmarks/peers/task.py`): the same data",
        "split and provider parts, the same initial weights, the same local recipe (deai's `local_train`:",
        "optimizer, lr, momentum, weight decay, epochs, batch size) and the same test set. deai runs",
        "`deai simulate`'s path with the whole protocol (signed messages, ledger, verified aggregation and",
        "scoring jobs at r = 3, p = 0.1, LOO scoring, settlement) in one process; Flower "
        f"{out['flower']} runs a ServerApp and a ClientApp per provider. Each side may use "
        f"{out['threads']} CPU threads (Flower: Ray with that many CPUs, one per client actor).",
        "Runs alternate between the systems; figures are medians over "
        f"{out['repeats']} runs of each. Peak memory is the summed RSS of the process and all its",
        "descendants (Ray's GCS, raylet and workers for Flower), sampled every 50 ms.",
        "",
        f"```bash\n# at commit {out.get('commit', '?')}",
        command,
        "```",
        "",
        f"Load average during the run: {load['start'][0]:.1f} at start, {load['end'][0]:.1f} at the end, "
        f"on {load['cpus']} CPUs"
        + (" (the machine was shared: timings were taken under load)." if load["end"][0] > 1.0 else "."),
        "",
        "## Time and memory",
        "",
        *_timing(out),
        "",
        "## 25% Byzantine providers (the CNN task)",
        "",
        "The last 5 of 20 providers are Byzantine on both sides, with the same attack math: Flower's",
        "side wraps its built-in rule in a strategy that replaces their updates with deai's own",
        "`Attack.craft` on the round's honest updates before the rule aggregates",
        "(`benchmarks/peers/flower_side.py`, `Attacked`).",
        "",
        *_byzantine(out),
        "",
        f"Goals: {GOALS}; under 25% Byzantine providers, deai's default at least 5 points above",
        "Flower's best built-in rule on the worst attack.",
        "",
    ]
    return "\n".join(lines)
