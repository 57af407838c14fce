"""Compression codec micro-benchmark: compress / decompress throughput and bytes per scheme.

For each scheme, on one update of ``d`` float32 values (``d = 10,000,000``; ``DEAI_SMALL=1``:
100,000): the best-of-``--repeats`` time to compress it and to check + decompress the result, each
as a ratio to a plain float32 copy of the same tensor measured in this run (``x.clone()``: the
floor any codec pays to touch the data), and the bytes on the wire (the safetensors size of the
compressed dict) against the ``4 * d`` bytes of dense float32. One thread (``torch``), so the
ratios are comparable between machines. Prints JSON.

    OMP_NUM_THREADS=1 python benchmarks/compression_codecs.py [--d 10000000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable

import torch

from deai.learn.compression import compressed_bytes, get_compressor

SCHEMES = [
    "none",
    "int8",
    "int4",
    "int2",
    "topk(ratio=0.01)",
    "topk(ratio=0.01)+int2",
    "chunked_topk(ratio=0.01, chunk=4096)+int2",
    "chunked_topk(ratio=0.02, chunk=4096)+int2",
    "randomk(ratio=0.01)+int2",
    "topk(ratio=0.01)+int2(rounding='stochastic')",
    "topk(ratio=0.001)+int8",
]


def best_of(fn: Callable[[], object], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    small = os.environ.get("DEAI_SMALL") == "1"
    parser.add_argument("--d", type=int, default=100_000 if small else 10_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    d = args.d
    x = torch.randn(d, generator=torch.Generator().manual_seed(args.seed))
    copy_s = best_of(lambda: x.clone(), args.repeats)
    report: dict = {
        "d": d,
        "threads": 1,
        "repeats": args.repeats,
        "dense_float32_bytes": 4 * d,
        "float32_copy_seconds": copy_s,
        "schemes": {},
    }
    for spec in SCHEMES:
        c = get_compressor(spec)

        def compress(c=c) -> dict[str, torch.Tensor]:
            return c.compress(x, seed=args.seed, generator=torch.Generator().manual_seed(args.seed))

        wire = compress()
        y = c.decompress(wire, d)
        comp_s = best_of(compress, args.repeats)
        decomp_s = best_of(lambda c=c, wire=wire: c.decompress(wire, d), args.repeats)
        size = compressed_bytes(wire)
        report["schemes"][spec] = {
            "canonical_spec": c.spec,
            "values_sent": int(wire["header"][2]),
            "bytes": size,
            "bytes_ratio_vs_float32": 4 * d / size,
            "bits_per_parameter": 8 * size / d,
            "relative_l2_error": float((x - y).norm() / x.norm()),
            "compress_seconds": comp_s,
            "decompress_seconds": decomp_s,
            "compress_time_ratio_vs_copy": comp_s / copy_s,
            "decompress_time_ratio_vs_copy": decomp_s / copy_s,
            "compress_throughput_mparams_per_s": d / comp_s / 1e6,
            "decompress_throughput_mparams_per_s": d / decomp_s / 1e6,
        }
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
