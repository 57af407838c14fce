"""Secure aggregation benchmark: 100 providers x 100,000 parameters, 30% dropouts.

Half of the dropouts leave after sharing their keys but before sending their masked input (the
server must recover their mask keys and strip their pairwise masks); the other half leave after
sending it, before unmasking (their self-masks are recovered from their neighbours' shares).

Prints JSON: the recovered sum against the plain float sum (error and its quantization bound, and
exact equality with the ring sum of the quantized inputs), bandwidth each provider sends over its
plain float32 update, and provider / server time as ratios to the plain sum measured in this run.
DEAI_SMALL=1 shrinks it to 20 providers x 10,000 parameters for CI.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np
import torch

from deai.core.accounts import Account
from deai.protocol.secagg import SecAggConfig, run_round
from deai.protocol.secagg.phases import Phase


def plain_sum_seconds(updates: np.ndarray, included: list[int], repeats: int = 5) -> float:
    """The baseline: the server sums the survivors' plain float32 updates (already decoded, as the
    secure round's server time also excludes wire decoding). Best of ``repeats``."""
    vectors = [torch.from_numpy(updates[u].astype(np.float32)) for u in included]
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.stack(vectors).sum(0)
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> dict:
    torch.set_num_threads(1)
    small = os.environ.get("DEAI_SMALL") == "1"
    n, dim, rate, seed = (20, 10_000, 0.3, 0) if small else (100, 100_000, 0.3, 0)
    accounts = [Account.from_seed("bench-secagg", i) for i in range(n)]
    config = SecAggConfig(tuple(a.address for a in accounts), dim, clip=1.0, ring_bits=32, tag="bench")
    rng = np.random.default_rng(seed)
    updates = rng.normal(0.0, 0.05, (n, dim)).astype(np.float32)
    droppers = rng.choice(n, size=round(n * rate), replace=False)
    half = len(droppers) // 2
    drop = {int(u): Phase.MASKED for u in droppers[:half]} | {int(u): Phase.UNMASK for u in droppers[half:]}

    t0 = time.perf_counter()
    result, stats = run_round(config, updates, accounts, drop=drop, seed=seed)
    wall = time.perf_counter() - t0
    included = list(result.included)

    plain = updates[included].astype(np.float64).sum(0)
    ring_sum = np.zeros(dim, dtype=config.ring.dtype)
    for u in included:
        ring_sum += config.ring.encode(updates[u])[0]
    base = plain_sum_seconds(updates, included)
    finishers = [u for u in range(n) if u not in drop]
    sent = np.array([stats.sent_bytes[u] for u in finishers])
    provider_s = np.array([stats.client_seconds[u] for u in finishers])
    report = {
        "providers": n,
        "dim": dim,
        "dropout_rate": rate,
        "dropped": len(droppers),
        "dropped_before_masked_input": half,
        "dropped_after_masked_input": len(droppers) - half,
        "included_in_sum": len(included),
        "degree": config.degree,
        "threshold": config.threshold,
        "ring_bits": config.ring.bits,
        "frac_bits": config.ring.frac_bits,
        "clip": config.clip,
        "max_abs_error": float(np.abs(result.total - plain).max()),
        "error_bound": result.error_bound,
        "exact_ring_sum": bool(np.array_equal(result.total, config.ring.decode(ring_sum, len(included)))),
        "plain_update_bytes": 4 * dim,
        "provider_sent_bytes_max": int(sent.max()),
        "bandwidth_expansion": float(sent.max() / (4 * dim)),
        "bandwidth_expansion_mean": float(sent.mean() / (4 * dim)),
        "provider_received_bytes_max": int(max(stats.received_bytes[u] for u in finishers)),
        "plain_sum_seconds": base,
        "provider_seconds_mean": float(provider_s.mean()),
        "server_seconds": stats.server_seconds,
        "provider_time_ratio": float(provider_s.mean() / base),
        "server_time_ratio": float(stats.server_seconds / base),
        "round_wall_seconds_all_parties_one_process": wall,
        "clipped_coordinates": stats.clipped,
    }
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
