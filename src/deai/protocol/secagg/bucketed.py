"""Bucketed secure aggregation: robustness without seeing single updates.

Providers are split into random buckets (a seeded permutation, so anyone can recompute the
assignment); each bucket runs its own secure aggregation round, so the server learns only each
bucket's sum; a robust aggregator from the learning kernel (``deai.learn.aggregators``) then runs
over the bucket means.

The bucket size ``s`` trades privacy for robustness:

- privacy: the server sees the mean of ``s`` updates, so each update hides among ``s - 1`` others
  (``s = 1`` reveals every update; ``s = n`` is plain secure aggregation, no robustness at all);
- robustness: ``f`` Byzantine providers can spoil at most ``f`` of the ``b = n // s`` buckets, so the
  robust aggregator must tolerate ``f`` bad rows out of ``b`` (e.g. ``2f < b`` for the median family,
  i.e. ``s < n / (2f)``). Averaging also shrinks the spread of honest rows by ``sqrt(s)``, which helps
  robust aggregators on heterogeneous data (Karimireddy et al., ICLR 2022) — but an attacker's update
  is diluted by only ``1/s`` and, in the worst case, its bucket is still an outlier it controls.
- dropouts are handled inside each bucket; a bucket whose round aborts is left out (and reported),
  which the robust aggregator tolerates like a missing row. A bucket needs at least 2 providers
  (with exactly 2, each could subtract its own update from the sum and learn the other's), so use
  ``s >= 3`` when providers may collude with the server.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from deai.core.accounts import Account
from deai.protocol.secagg.config import SecAggConfig
from deai.protocol.secagg.driver import run_round
from deai.protocol.secagg.errors import RoundAborted
from deai.protocol.secagg.phases import Phase
from deai.protocol.secagg.server import SecAggResult

__all__ = ["BucketedResult", "assign_buckets", "bucketed_secure_aggregate"]


def assign_buckets(n: int, bucket_size: int, seed: bytes) -> list[tuple[int, ...]]:
    """``n // bucket_size`` buckets of a seeded random permutation; the remainder is spread one per
    bucket, so sizes are ``bucket_size`` or ``bucket_size + 1``."""
    if not 1 <= bucket_size <= n:
        raise ValueError(f"bucket size must be in [1, {n}], got {bucket_size}")
    key = int.from_bytes(hashlib.sha256(b"deai-buckets" + seed).digest()[:16], "big")
    order = np.random.Generator(np.random.Philox(key=key)).permutation(n)
    b = n // bucket_size
    buckets = [list(order[i * bucket_size : (i + 1) * bucket_size]) for i in range(b)]
    for i, u in enumerate(order[b * bucket_size :]):
        buckets[i % b].append(u)
    return [tuple(sorted(int(u) for u in bucket)) for bucket in buckets]


@dataclass
class BucketedResult:
    aggregate: torch.Tensor  # [d], the robust aggregate of the bucket means
    bucket_means: torch.Tensor  # [b', d], one row per completed bucket
    buckets: list[tuple[int, ...]]
    results: list[SecAggResult | None]  # per bucket; None where its round aborted
    aborted: list[tuple[int, str]] = field(default_factory=list)  # (bucket, reason)


def bucketed_secure_aggregate(
    updates: np.ndarray | torch.Tensor,
    accounts: Sequence[Account],
    bucket_size: int,
    aggregator,
    *,
    seed: bytes,
    clip: float = 1.0,
    ring_bits: int = 32,
    tag: str = "",
    drop: Mapping[int, Phase] | None = None,
) -> BucketedResult:
    """Securely sum each bucket of ``updates`` ``[n, d]`` and robustly aggregate the bucket means.

    ``aggregator`` is a ``deai.learn.aggregators`` aggregator (``Aggregator.__call__(updates [b, d])``)
    or a spec string for ``get_aggregator``. ``drop`` maps a provider to the phase it drops out at.
    Coordinates are clipped to ``[-clip, clip]`` (the secure sum's range).
    """
    if isinstance(aggregator, str):
        from deai.learn.aggregators import get_aggregator

        aggregator = get_aggregator(aggregator)
    x = updates.detach().cpu().double().numpy() if isinstance(updates, torch.Tensor) else np.asarray(updates)
    n, d = x.shape
    if len(accounts) != n:
        raise ValueError(f"{len(accounts)} accounts for {n} updates")
    if bucket_size < 2:
        raise ValueError("secure aggregation needs buckets of at least 2 providers")
    buckets = assign_buckets(n, bucket_size, seed)
    drop = dict(drop or {})
    means: list[torch.Tensor] = []
    results: list[SecAggResult | None] = []
    aborted: list[tuple[int, str]] = []
    for b, members in enumerate(buckets):
        accts = [accounts[u] for u in members]
        config = SecAggConfig(
            tuple(a.address for a in accts), d, clip=clip, ring_bits=ring_bits, tag=f"{tag}:bucket{b}"
        )
        local_drop = {i: drop[u] for i, u in enumerate(members) if u in drop}
        try:
            result, _ = run_round(
                config, x[list(members)], accts, drop=local_drop, seed=int.from_bytes(seed[:4], "big") + b
            )
        except RoundAborted as exc:
            results.append(None)
            aborted.append((b, str(exc)))
            continue
        results.append(result)
        means.append(torch.from_numpy(result.total / len(result.included)))
    if not means:
        raise RoundAborted("every bucket's secure aggregation aborted")
    stacked = torch.stack(means)
    return BucketedResult(aggregator(stacked), stacked, buckets, results, aborted)
