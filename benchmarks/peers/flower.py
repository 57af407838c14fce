"""deai side by side with Flower 1.42 on the same tasks: wall time, time per round, peak memory, accuracy.

Each task is ONE description (:class:`task.PeerTask`): the same data split and provider parts, the
same initial weights, the same local recipe and the same test set on both sides (deai's plan of the
task is exported to files that Flower's side reads). deai runs ``deai simulate``'s path with the whole
protocol (signed messages, ledger, verified aggregation and scoring jobs at r = 3, p = 0.1, LOO
scoring, settlement; :mod:`deai_side`); Flower runs a ``ServerApp``/``ClientApp`` under its Ray
simulation engine (:mod:`flower_side`). Flower lives in its own venv, ``.venv-peers/`` (its pins
conflict with deai's: fastapi, starlette, typer, rich), built from ``requirements-flower.txt`` on
first use.

Every run is a fresh process; the two systems alternate (deai first in even repeats, Flower first in
odd ones) and each figure is the median over ``--repeats``:

- ``wall_seconds``: process start to exit (imports, start-up, training, evaluation);
- ``seconds_per_round``: the median time between consecutive round ends, after start-up;
- ``peak_rss_mb``: the peak of the summed resident memory of the process and all its descendants
  (Ray's GCS, raylet and worker processes for Flower), sampled every 50 ms with psutil;
- ``accuracy``: final test accuracy; then the ratios deai / Flower.

Tasks: ``digits_mlp`` (20 providers, 20 rounds, FedAvg on both sides), ``fashion_cnn`` (a ResNet on
Fashion-MNIST, 20 Dirichlet(0.5) providers; deai with its default defense, Flower FedAvg) and
``fashion_cnn_byzantine`` (the same CNN, the last 5 of 20 providers Byzantine: sign flip, ALIE, IPM,
one run per attack and rule; Flower's best built-in rule per attack against deai's default).

    python benchmarks/peers/flower.py                       # every task, 3 repeats
    python benchmarks/peers/flower.py --tasks digits_mlp --repeats 5
    python benchmarks/peers/flower.py --small --repeats 1   # seconds per side (the slow test)
    python benchmarks/peers/flower.py --page docs/results/peers.md  # also write the results page
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

from task import TASKS, PeerTask, small_form  # noqa: E402

__all__ = ["PeersUnavailable", "ensure_venv", "main"]

VENV = ROOT / ".venv-peers"
REQUIREMENTS = HERE / "requirements-flower.txt"
RULES = ("krum", "multikrum", "bulyan", "median", "trimmed")
ATTACKS = ("sign_flip", "alie", "ipm")


class PeersUnavailable(RuntimeError):
    """Flower's venv could not be built (no registry access, no wheel for this platform)."""


def ensure_venv() -> Path:
    """``.venv-peers/bin/python``, creating the venv and installing the pins on first use (or when
    ``requirements-flower.txt`` changed)."""
    python, stamp = VENV / "bin" / "python", VENV / ".installed"
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    if python.exists() and stamp.exists() and stamp.read_text() == digest:
        return python
    steps = [
        [sys.executable, "-m", "venv", str(VENV)],
        [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q", "-r", str(REQUIREMENTS)],
    ]
    for cmd in steps:
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise PeersUnavailable(f"cannot build {VENV}: {' '.join(cmd[:4])} failed:\n{done.stderr[-2000:]}")
    stamp.write_text(digest)
    return python


def _tree_rss(proc) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(Exception):  # a child that exited between the listing and the read
            total += p.memory_info().rss
    return total


def measure(cmd: list[str], env: dict[str, str], log: Path) -> dict:
    """Run ``cmd``; its last stdout line is its JSON. Adds the wall time and the tree's peak RSS."""
    import psutil

    peak = [0]
    with open(log, "w") as out:
        t0 = time.perf_counter()
        child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=out, text=True, env=env, cwd=ROOT)
        stop = threading.Event()

        def sample() -> None:
            proc = psutil.Process(child.pid)
            while not stop.is_set():
                peak[0] = max(peak[0], _tree_rss(proc))
                stop.wait(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        stdout, _ = child.communicate()
        wall = time.perf_counter() - t0
        stop.set()
        sampler.join()
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if child.returncode != 0 or not lines:
        raise RuntimeError(f"{' '.join(cmd[:3])} failed (rc {child.returncode}); see {log}")
    result = json.loads(lines[-1])
    marks = result.pop("round_marks")
    gaps = sorted(b - a for a, b in itertools.pairwise(marks))
    result.update(
        wall_seconds=wall,
        seconds_per_round=gaps[len(gaps) // 2] if gaps else None,
        peak_rss_mb=peak[0] / 2**20,
    )
    return result


class Sides:
    """The two systems' commands for one exported task."""

    def __init__(self, task: PeerTask, work: Path, flower_python: Path, threads: int) -> None:
        self.task, self.work, self.threads = task, work, threads
        self.flower_python = flower_python
        work.mkdir(parents=True, exist_ok=True)
        self.task_file = work / "peer_task.json"
        self.task_file.write_text(json.dumps(asdict(task)))
        self.env = {
            **os.environ,
            "OMP_NUM_THREADS": str(threads),
            "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(HERE)]),
            "HF_HUB_OFFLINE": "1",
        }
        subprocess.run(
            [sys.executable, str(HERE / "deai_side.py"), "export", str(self.task_file), str(work / "flower")],
            check=True,
            capture_output=True,
            env=self.env,
            cwd=ROOT,
        )
        self.runs = 0

    def deai(self) -> dict:
        self.runs += 1
        cmd = [sys.executable, str(HERE / "deai_side.py"), "run", str(self.task_file), str(self.threads)]
        return measure(cmd, self.env, self.work / f"deai{self.runs}.log")

    def flower(self, rule: str) -> dict:
        self.runs += 1
        script, task = str(HERE / "flower_side.py"), str(self.work / "flower" / "task.json")
        cmd = [str(self.flower_python), script, task, rule, str(self.threads)]
        return measure(cmd, self.env, self.work / f"flower{self.runs}.log")


def _median(runs: list[dict], key: str) -> float | None:
    values = [r[key] for r in runs if r[key] is not None]
    return statistics.median(values) if values else None


def _summary(runs: list[dict]) -> dict:
    keys = ("wall_seconds", "seconds_per_round", "peak_rss_mb", "accuracy")
    return {**{k: _median(runs, k) for k in keys}, "runs": runs}


def side_by_side(sides: Sides, repeats: int) -> dict:
    """Both systems ``repeats`` times, alternating which goes first."""
    deai, flower = [], []
    for i in range(repeats):
        order = ("deai", "flower") if i % 2 == 0 else ("flower", "deai")
        for system in order:
            (deai if system == "deai" else flower).append(
                sides.deai() if system == "deai" else sides.flower("fedavg")
            )
    a, b = _summary(deai), _summary(flower)
    ratios = {
        k: round(a[k] / b[k], 3) if a[k] and b[k] else None
        for k in ("wall_seconds", "seconds_per_round", "peak_rss_mb")
    }
    return {"setup": asdict(sides.task), "deai": a, "flower": b, "ratio_deai_over_flower": ratios}


def byzantine(task: PeerTask, work: Path, python: Path, threads: int, attacks, rules) -> dict:
    """Per attack: deai's default defense vs each of Flower's built-in rules (one run each)."""
    out: dict = {}
    for attack in attacks:
        sides = Sides(task.with_attack(attack), work / attack, python, threads)
        row: dict = {"deai": sides.deai(), "flower": {}}
        n, f = task.providers, task.byzantine
        for rule in rules:
            if rule == "bulyan" and n < 4 * f + 3:  # Flower's aggregate_bulyan raises in round 1
                row["flower"][rule] = {"error": f"Bulyan needs n >= 4f + 3 (n = {n}, f = {f})"}
                continue
            try:
                row["flower"][rule] = sides.flower(rule)
            except RuntimeError as exc:  # e.g. Bulyan needs n >= 4f + 3
                row["flower"][rule] = {"error": str(exc)}
        scored = {r: v["accuracy"] for r, v in row["flower"].items() if "accuracy" in v}
        best = max(scored, key=lambda r: scored[r]) if scored else None
        row["flower_best_rule"] = best
        row["margin_points"] = (
            round(100 * (row["deai"]["accuracy"] - scored[best]), 2) if best is not None else None
        )
        out[attack] = row
    worst = min(out, key=lambda a: out[a]["margin_points"] if out[a]["margin_points"] is not None else 1e9)
    return {"setup": asdict(task), "attacks": out, "worst_attack": worst}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="CPU threads each side may use")
    parser.add_argument("--attacks", default=",".join(ATTACKS))
    parser.add_argument("--rules", default=",".join(RULES))
    parser.add_argument("--small", action="store_true", help="4 providers, 2 rounds, a few hundred samples")
    parser.add_argument("--page", type=Path, help="also write the results page (markdown) here")
    args = parser.parse_args()
    try:
        python = ensure_venv()
    except PeersUnavailable as exc:
        print(json.dumps({"unavailable": str(exc)}))
        raise SystemExit(3) from None
    work = Path(tempfile.mkdtemp(prefix="deai-peers-"))
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    out: dict = {
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
        ).stdout.strip(),
        "flower": "1.42.0 (Ray simulation engine)",
        "threads": args.threads,
        "repeats": args.repeats,
        "small": args.small,
        "tasks": {},
    }
    for name in args.tasks.split(","):
        task = TASKS[name]
        task = small_form(task) if args.small else task
        if task.byzantine:
            attacks, rules = args.attacks.split(","), args.rules.split(",")
            out["byzantine"] = byzantine(task, work / name, python, args.threads, attacks, rules)
        else:
            out["tasks"][name] = side_by_side(Sides(task, work / name, python, args.threads), args.repeats)
    out["load_average"] = {"start": load0, "end": os.getloadavg(), "cpus": os.cpu_count()}
    out["total_seconds"] = time.perf_counter() - t0
    out["logs"] = str(work)
    print(json.dumps(out, indent=2))
    if args.page:
        from page import render

        args.page.write_text(render(out, " ".join(["python benchmarks/peers/flower.py", *sys.argv[1:]])))


if __name__ == "__main__":
    main()
