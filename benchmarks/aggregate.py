"""Aggregation speed: every aggregator on n updates of d floats, as a ratio of ``torch.mean``.

Prints JSON. Ratios are against ``updates.mean(0)`` over the same tensor in the same run (best of
``--repeats``). Also measures the candidate median kernels (the reason for the sort kernel in
``deai.learn.aggregators._ops``) and Krum's scaling in n at fixed d (O(n^2 d): time ~ n^2).

    python benchmarks/aggregate.py                  # n=100, d=1,000,000
    DEAI_SMALL=1 python benchmarks/aggregate.py     # n=100, d=100,000
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time

import numpy as np
import torch

from deai.learn.aggregators import get_aggregator

SPECS = [
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
    "nnm+centered_clipping",
    "bucketing(s=2)+trimmed_mean",
    "root_gate+centered_clipping",
]


def best_time(fn, repeats: int) -> float:
    fn()  # warm-up (allocations, lazy init)
    best = math.inf
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--d", type=int, default=1_000_000)
    ap.add_argument("--f", type=int, default=10, help="declared Byzantine count (Bulyan needs n >= 4f + 3)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    if os.environ.get("DEAI_SMALL") == "1":
        args.d = min(args.d, 100_000)
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(args.n, args.d, generator=gen)
    root = x.mean(0) + 0.1 * torch.randn(args.d, generator=gen)
    base = best_time(lambda: x.mean(0), args.repeats)

    results = {}
    for spec in SPECS:
        agg = get_aggregator(spec, f=0 if spec == "mean" else args.f)
        ctx = {"root_update": root} if spec.startswith(("fltrust", "root_gate")) else {}
        t = best_time(lambda agg=agg, ctx=ctx: agg(x, **ctx), args.repeats)
        results[spec] = {"seconds": t, "ratio_to_mean": t / base}
        if spec == "geometric_median":
            results[spec]["iterations"] = agg.iterations

    xn = x.numpy()
    kernels = {
        "torch.median(dim=0)": lambda: x.median(0),
        "torch.kthvalue(dim=0)": lambda: x.kthvalue(args.n // 2, 0),
        "torch.sort(dim=0)": lambda: x.sort(0),
        "torch.topk(k=f, dim=0) both ends": lambda: (x.topk(args.f, 0), x.topk(args.f, 0, largest=False)),
        "numpy.partition(axis=0)": lambda: np.partition(xn, args.n // 2, axis=0),
        "deai sort kernel (median)": lambda: get_aggregator("median", f=args.f).aggregate(x, None),
    }
    kernel_ratios = {k: best_time(fn, args.repeats) / base for k, fn in kernels.items()}

    # Krum scaling in n at fixed d: fit the exponent p of time ~ n^p (p ~ 2 once the Gram matrix dominates).
    ns = [max(8, args.n // 4), max(12, args.n // 2), args.n]
    d_s = min(args.d, 200_000)
    krum_times = []
    for n in ns:
        xs = torch.randn(n, d_s, generator=gen)
        krum = get_aggregator("krum", f=max(1, n // 10))
        krum_times.append(best_time(lambda krum=krum, xs=xs: krum(xs), args.repeats))
    slope = float(np.polyfit(np.log(ns), np.log(krum_times), 1)[0])

    out = {
        "benchmark": "aggregate",
        "n": args.n,
        "d": args.d,
        "f": args.f,
        "threads": args.threads,
        "torch_mean_seconds": base,
        "aggregators": results,
        "median_kernels_ratio_to_mean": kernel_ratios,
        "krum_scaling": {"d": d_s, "n": ns, "seconds": krum_times, "fitted_exponent_in_n": slope},
        "targets": {
            "mean_within_1.5x": results["mean"]["ratio_to_mean"] <= 1.5,
            "median_within_10x": results["median"]["ratio_to_mean"] <= 10,
            "trimmed_mean_within_10x": results["trimmed_mean"]["ratio_to_mean"] <= 10,
        },
    }
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
