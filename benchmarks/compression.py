"""Compression through the network: bytes per round, accuracy, Byzantine robustness, time to accuracy.

Every run is a whole scenario through the network code (:func:`deai.sim.runner.run_scenario`:
signed envelopes, the hub, verified aggregation jobs, scoring, settlement), on the memory transport
with every participant on a simulated home link (:data:`LINK`: 10 Mbit/s up, 100 Mbit/s down, 30 ms).
Per workload (the Fashion-MNIST ResNet of ``scenarios/fashion_cnn.yaml`` and the Shakespeare GPT of
``scenarios/shakespeare_lm.yaml``) and per codec (``task.compression``):

- **bytes per round per provider**, counted on the transport (the data providers' daemon counters,
  round by round, divided by the providers it hosts): uplink (the update blob; and everything sent,
  with statements and polls) and downlink (the checkpoint blob, which a provider alone downloads
  whole; and everything received). Ratios are against dense float32 FedAvg run here (``none``);
- **final test accuracy / perplexity**, and the validation metric per round;
- the same with 25% Byzantine providers under the default defense (``aggregator: default``);
- **simulated time to accuracy** (:mod:`deai.net.links`): per round, each provider downloads the
  checkpoint, computes (its daemon's measured step seconds in that round / providers hosted) and
  uploads its update over its link, serially; providers in parallel; the hub a fat link. The
  targets: the dense run's final validation metric within the goal margin (1 point / 3%), and a
  loose one (90% of its accuracy / 110% of its perplexity).

The downlink is the dense checkpoint (every provider downloads the new global model each round), so
compressing the uplink cannot shrink a round's total bytes by more than about 2x; both are reported.
The full form also runs the main codec on Shakespeare over HTTP (hub and daemons as processes) and
compares its daemon counters with the memory run's (blob bytes must agree exactly).

    OMP_NUM_THREADS=1 python benchmarks/compression.py            # full (~20 min on 2 cores)
    OMP_NUM_THREADS=1 python benchmarks/compression.py --quick    # the small scenarios (< 2 min)
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from deai.core.errors import DeaiError
from deai.net.links import Link, ProviderRound, round_seconds, time_to_target
from deai.sim.runner import run_scenario
from deai.sim.scenario import parse_scenario

ROOT = Path(__file__).resolve().parents[1]
LINK = Link(up_mbit=10.0, down_mbit=100.0, latency_ms=30.0)
MAIN = "topk(ratio=0.01)+int2"


@dataclass(frozen=True)
class Codec:
    """One configuration: ``up`` the providers' ``task.compression``, ``down`` the broadcast's
    ``task.global_compression``."""

    name: str
    up: str
    down: str = "none"


DENSE = Codec("dense", "none")
UP = Codec("topk1%+int2 up", MAIN)
BOTH = Codec("topk1%+int2 up+down", MAIN, MAIN)
CODECS = [
    DENSE,
    UP,
    BOTH,
    Codec(
        "chunked_topk1%+int2 up+down",
        "chunked_topk(ratio=0.01, chunk=4096)+int2",
        "chunked_topk(ratio=0.01, chunk=4096)+int2",
    ),
    Codec("int8 up+down", "int8", "int8"),
]
QUICK_CODECS = [DENSE, BOTH]
# --probes: uplink-only codecs on Fashion that separate the top-k budget from the 2-bit codes.
PROBES = [
    Codec("topk10% up", "topk(ratio=0.1)"),
    Codec("topk10%+int2 up", "topk(ratio=0.1)+int2"),
    Codec("topk1% up", "topk(ratio=0.01)"),
    Codec("topk1%+int4 up", "topk(ratio=0.01)+int4"),
    Codec("int2 up", "int2"),
]
# The main codec again with this many times the rounds (full form): its rounds are cheaper, so the
# time-to-accuracy comparison is at equal simulated time, not equal rounds.
LONGER = {"shakespeare": 4, "fashion": 4}  # for the uplink-only and the up+down main codec
# The full form's medium sizes: Fashion-MNIST on 4,000 training images (the scenario's 12,000 take
# ~20 s a round here, too long for the 20-minute budget); Shakespeare as bundled.
MEDIUM: dict[str, dict[str, Any]] = {"fashion": {"dataset": {"max_train_samples": 4000}}, "shakespeare": {}}

# Byzantine providers (25%), by workload: the scenarios' own attacks.
ATTACKS = {
    "fashion": [
        {"role": "data_provider", "behaviour": "sign_flip", "count": 1},
        {"role": "data_provider", "behaviour": "alie", "count": 1},
    ],
    "shakespeare": [
        {"role": "data_provider", "behaviour": "ipm", "count": 1},
        {"role": "data_provider", "behaviour": "alie", "count": 1},
    ],
}
SCENARIOS = {"fashion": "fashion_cnn.yaml", "shakespeare": "shakespeare_lm.yaml"}


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = (
            _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
        )
    return out


def scenario_doc(
    workload: str, quick: bool, codec: Codec, byzantine: bool, rounds_times: int = 1
) -> dict[str, Any]:
    """The scenario for one run: the bundled file (its small form when ``quick``) with 8 providers
    (4 in the quick form), no inference, FedAvg when clean and the default defense under attack."""
    doc = yaml.safe_load((ROOT / "scenarios" / SCENARIOS[workload]).read_text())
    small = doc.pop("small", {})
    doc = _merge(doc, small if quick else MEDIUM[workload])
    n = 4 if quick else 8
    attacks = copy.deepcopy(ATTACKS[workload])
    if quick:
        attacks = attacks[:1]  # 1 of 4
    doc = _merge(
        doc,
        {
            "network": {"data_providers": n, "transport": "memory"},
            "task": {
                "compression": codec.up,
                "global_compression": codec.down,
                "aggregator": "default" if byzantine else "mean",
            },
            "inference": {"requests": 0},
        },
    )
    doc["adversaries"] = attacks if byzantine else []
    doc["task"]["rounds"] *= rounds_times
    doc["name"] = f"{workload}-{'byz' if byzantine else 'clean'}"
    return doc


def _training_rounds(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The per-round traffic entries of the training rounds (those the data providers uploaded in),
    in order."""
    rows = report["traffic"]["per_round"]
    return [r for r in rows if r["roles"].get("data_provider", {}).get("blob_sent", 0) > 0]


def _mean(xs: list[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def summarize(report: dict[str, Any], text: bool) -> dict[str, Any]:
    """Per-provider bytes per round, the metric per round and the simulated round times of one run.

    Per provider: the daemon's uploads / providers hosted; downloads: the blobs the daemon fetched
    (one checkpoint or patch per round serves all its providers, and a provider alone fetches the
    same) plus its share of the JSON answers. Round 0 fetches the initial checkpoint whole; the
    steady state is the mean over the later rounds."""
    n = report["traffic"]["roles"]["data_provider"]["accounts"]
    dp = [r["roles"]["data_provider"] for r in _training_rounds(report)]
    up_blob = [r["blob_sent"] / n for r in dp]
    up_all = [r["sent"] / n for r in dp]
    down_blob = [float(r["blob_received"]) for r in dp]
    down_all = [r["blob_received"] + (r["received"] - r["blob_received"]) / n for r in dp]
    compute = [r["busy_seconds"] / n for r in dp]
    requests = [max(1, round(r["requests"] / n)) for r in dp]
    sim = [
        round_seconds([ProviderRound(down_all[i], up_all[i], compute[i], LINK, requests=requests[i])])
        for i in range(len(dp))
    ]
    metric = [h["perplexity"] if text else h["accuracy"] for h in report["rounds"]]
    return {
        "defense": report["defense"],
        "test_accuracy": report["test_accuracy"],
        "test_perplexity": report["test_perplexity"],
        "val_per_round": metric,
        "uplink_blob_per_provider_round": _mean(up_blob),
        "uplink_all_per_provider_round": _mean(up_all),
        "downlink_blob_first_round": down_blob[0] if down_blob else None,
        "downlink_blob_per_provider_round": _mean(down_blob[1:]),
        "downlink_all_per_provider_round": _mean(down_all[1:]),
        "compute_s_per_provider_round": _mean(compute),
        "sim_round_seconds": sim,
        "sim_seconds_all_rounds": sum(sim),
        "link_seconds_data_daemon": sum(r["link_seconds"] for r in dp),
        "wall_seconds": report["wall_seconds"],
        "_metric": metric,
    }


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def workload(name: str, quick: bool, codecs: list[Codec], log: Any, probes: bool = False) -> dict[str, Any]:
    """Every codec on the clean workload (FedAvg), then dense and the main codec under attack, and
    the main codec for more rounds; with ``probes`` dense and the :data:`PROBES` only."""
    text = name == "shakespeare"
    runs: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    plan = [(c, False, 1) for c in codecs] + [(c, True, 1) for c in ((BOTH,) if quick else (DENSE, BOTH))]
    if not quick and name in LONGER:  # the main codec for more rounds: each costs less
        plan += [(UP, False, LONGER[name]), (BOTH, False, LONGER[name])]
    if probes:
        plan = [(c, False, 1) for c in (DENSE, *PROBES)]
    for codec, byz, times in plan:
        doc = scenario_doc(name, quick, codec, byz, times)
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="deai-bench-comp-") as tmp:
            try:
                report = run_scenario(
                    parse_scenario(doc, source=doc["name"]), tmp, transport="memory", link=LINK
                )
            except (DeaiError, RuntimeError, ValueError) as exc:  # e.g. a provider's update blew up
                failed = f"{type(exc).__name__}: {str(exc)[:300]}"
                log(f"{name} {codec.name} byz={byz} x{times}: FAILED {failed}")
                failures.append(
                    {"codec": codec.name, "byzantine": byz, "rounds_times": times, "error": failed}
                )
                continue
        row = {
            "codec": codec.name if times == 1 else f"{codec.name}, {times}x rounds",
            "rounds": doc["task"]["rounds"],
            "compression": codec.up,
            "global_compression": codec.down,
            "byzantine": byz,
            "aggregator": doc["task"]["aggregator"],
            **summarize(report, text),
        }
        log(f"{name} {row['codec']} byz={byz}: {time.perf_counter() - t0:.0f} s")
        runs.append(row)
    dense = next(r for r in runs if r["codec"] == DENSE.name and not r["byzantine"])
    final = dense["_metric"][-1]
    targets = (
        {"goal": final * 1.03, "loose": final * 1.10}
        if text
        else {"goal": final - 0.01, "loose": final * 0.9}
    )
    for r in runs:
        up, up_all = r["uplink_blob_per_provider_round"], r["uplink_all_per_provider_round"]
        down = r["downlink_blob_per_provider_round"]
        r["uplink_ratio_vs_dense"] = _ratio(dense["uplink_blob_per_provider_round"], up)
        r["uplink_all_ratio_vs_dense"] = _ratio(dense["uplink_all_per_provider_round"], up_all)
        r["downlink_ratio_vs_dense"] = _ratio(dense["downlink_blob_per_provider_round"], down)
        blobs, dense_blobs = (
            (x["uplink_blob_per_provider_round"] or 0) + (x["downlink_blob_per_provider_round"] or 0)
            for x in (r, dense)
        )
        r["round_blobs_ratio_vs_dense"] = _ratio(dense_blobs, blobs)
        alls, dense_alls = (
            (x["uplink_all_per_provider_round"] or 0) + (x["downlink_all_per_provider_round"] or 0)
            for x in (r, dense)
        )
        r["round_all_ratio_vs_dense"] = _ratio(dense_alls, alls)
        r["time_to_target_s"] = {
            k: time_to_target(r["sim_round_seconds"], r["_metric"], t, higher=not text)
            for k, t in targets.items()
        }
    main_clean = next((r for r in runs if r["codec"] == BOTH.name and not r["byzantine"]), None)
    main_byz = next((r for r in runs if r["codec"] == BOTH.name and r["byzantine"]), None)
    goals: dict[str, bool] = {}
    if main_clean is None and not probes:  # the main codec failed: no goal is met
        goals = dict.fromkeys(("uplink_update_150x", "round_blobs_150x", "quality", "byzantine"), False)
    if main_clean is not None:
        goals["uplink_update_150x"] = (main_clean["uplink_ratio_vs_dense"] or 0) >= 150
        goals["round_blobs_150x"] = (main_clean["round_blobs_ratio_vs_dense"] or 0) >= 150
        goals["round_all_bytes_150x"] = (main_clean["round_all_ratio_vs_dense"] or 0) >= 150
        if text:
            goals["perplexity_within_3pct"] = main_clean["test_perplexity"] <= 1.03 * dense["test_perplexity"]
        else:
            goals["accuracy_within_1pt"] = main_clean["test_accuracy"] >= dense["test_accuracy"] - 0.01
        # the main codec (uplink only or both ways) at either length of training
        reached = [
            t
            for r in runs
            if r["codec"].startswith((BOTH.name, UP.name))
            and not r["byzantine"]
            and (t := r["time_to_target_s"]["loose"]) is not None
        ]
        t_main, t_dense = min(reached, default=None), dense["time_to_target_s"]["loose"]
        goals["faster_to_loose_target"] = t_main is not None and t_dense is not None and t_main < t_dense
    if main_clean is not None and main_byz is not None:
        if text:
            goals["byzantine_within_3pct"] = (
                main_byz["test_perplexity"] <= 1.03 * main_clean["test_perplexity"]
            )
        else:
            goals["byzantine_within_3pt"] = main_byz["test_accuracy"] >= main_clean["test_accuracy"] - 0.03
    for r in runs:
        del r["_metric"]
    return {"targets": targets, "runs": runs, "failed": failures, "goals": goals}


def http_check(quick: bool, log: Any, name: str = "shakespeare") -> dict[str, Any]:
    """The main codec over HTTP (processes on loopback) against the same run in memory: the
    providers' update bytes must agree exactly, and so must the bytes each providers' daemon
    fetched (over HTTP the providers live in two daemons, each fetching checkpoints and patches)."""
    out: dict[str, Any] = {}
    doc = scenario_doc(name, quick, BOTH, False)
    out["workload"] = name
    for transport in ("memory", "http"):
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="deai-bench-comp-") as tmp:
            try:
                report = run_scenario(parse_scenario(doc, source=doc["name"]), tmp, transport=transport)
            except (DeaiError, RuntimeError, ValueError, TimeoutError) as exc:
                out["error"] = f"{transport}: {type(exc).__name__}: {str(exc)[:300]}"
                return out
        dp = report["traffic"]["roles"]["data_provider"]
        out[transport] = {
            "data_provider_blob_sent": dp["blob_sent"],
            "data_provider_blob_received": dp["blob_received"],
            "data_provider_sent": dp["sent"],
            "data_provider_received": dp["received"],
            "daemons": dp["clients"],
            "test_accuracy": report["test_accuracy"],
            "wall_seconds": report["wall_seconds"],
        }
        log(f"http check {transport}: {time.perf_counter() - t0:.0f} s")
    m, h = out["memory"], out["http"]
    out["uplink_blob_equal"] = m["data_provider_blob_sent"] == h["data_provider_blob_sent"]
    out["downlink_blob_per_daemon_equal"] = (
        m["data_provider_blob_received"] / m["daemons"] == h["data_provider_blob_received"] / h["daemons"]
    )
    return out


def _kb(x: float | None) -> str:
    return "-" if x is None else f"{x / 1000:,.1f}"


def _x(x: float | None) -> str:
    return "-" if x is None else f"{x:,.1f}x"


def _s(x: float | None) -> str:
    return "not reached" if x is None else f"{x:,.1f}"


def markdown(result: dict[str, Any]) -> str:
    """The measured tables (one per workload) as Markdown, for docs/results/compression.md."""
    out = []
    for name, w in result["workloads"].items():
        text = name == "shakespeare"
        metric = "test perplexity" if text else "test accuracy"
        out.append(f"### {name}\n")
        out.append(
            f"| configuration | attack | up: update kB | up: all kB | down: patch kB | down: all kB |"
            f" up ratio | blobs ratio | all-bytes ratio | {metric} | sim s/round | time to loose target s |"
        )
        out.append("|" + "---|" * 12)
        for r in w["runs"]:
            value = r["test_perplexity"] if text else r["test_accuracy"]
            sim = r["sim_round_seconds"]
            out.append(
                f"| {r['codec']} | {'25% + default' if r['byzantine'] else 'none (FedAvg)'}"
                f" | {_kb(r['uplink_blob_per_provider_round'])} | {_kb(r['uplink_all_per_provider_round'])}"
                f" | {_kb(r['downlink_blob_per_provider_round'])}"
                f" | {_kb(r['downlink_all_per_provider_round'])}"
                f" | {_x(r['uplink_ratio_vs_dense'])} | {_x(r['round_blobs_ratio_vs_dense'])}"
                f" | {_x(r['round_all_ratio_vs_dense'])} | {value:.4g}"
                f" | {sum(sim[1:]) / max(1, len(sim) - 1):.2f} | {_s(r['time_to_target_s']['loose'])} |"
            )
        t = w["targets"]
        out.append(
            f"\nTargets (from the dense run's final validation metric): goal {t['goal']:.4g},"
            f" loose {t['loose']:.4g}. Goals: "
            + ", ".join(f"{k} {'met' if v else 'not met'}" for k, v in w["goals"].items())
            + ".\n"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the scenarios' small forms (< 2 min)")
    parser.add_argument("--only", choices=sorted(SCENARIOS), help="one workload")
    parser.add_argument("--no-http", action="store_true", help="skip the HTTP cross-check")
    parser.add_argument("--http-only", action="store_true", help="only the HTTP cross-check")
    parser.add_argument("--probes", action="store_true", help="dense and the probe codecs only")
    parser.add_argument("--markdown", metavar="JSON", help="print the tables of a saved result and exit")
    args = parser.parse_args(argv)
    if args.markdown:
        saved = json.loads(Path(args.markdown).read_text())
        print(markdown(saved))
        return saved

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    import torch

    torch.set_num_threads(1)
    codecs = QUICK_CODECS if args.quick else CODECS
    t0 = time.perf_counter()
    result: dict[str, Any] = {
        "form": "quick" if args.quick else "full",
        "threads": 1,
        "link": {"up_mbit": LINK.up_mbit, "down_mbit": LINK.down_mbit, "latency_ms": LINK.latency_ms},
        "codecs": [{"name": c.name, "compression": c.up, "global_compression": c.down} for c in codecs],
        "workloads": {},
    }
    for name in [] if args.http_only else [args.only] if args.only else list(SCENARIOS):
        result["workloads"][name] = workload(name, args.quick, codecs, log, args.probes)
    if not args.no_http and not args.quick:
        result["http_check"] = http_check(args.quick, log)
    if args.http_only:
        result["workloads"] = {}

    result["wall_seconds"] = time.perf_counter() - t0
    print(
        json.dumps(result, indent=2, default=lambda x: None if isinstance(x, float) and math.isnan(x) else x)
    )
    return result


if __name__ == "__main__":
    main()
