"""Partitioners: split a dataset's sample indices across providers, seeded.

Every partitioner returns one int64 index array per provider; together they hold every sample
exactly once (a disjoint cover). ``partition(labels, n, kind, seed=..., **options)``:

- ``"iid"``: a random permutation cut into ``n`` near-equal parts;
- ``"dirichlet"`` (``alpha``): per class, proportions drawn from ``Dir(alpha)`` across providers
  (label skew; small alpha = strong skew), the standard scheme of Hsu et al. (2019);
- ``"shards"`` (``classes_per_provider``, default 2): samples sorted by label, cut into
  ``n * k`` shards, ``k`` random shards per provider (McMahan et al.'s pathological split);
- ``"quantity"`` (``alpha``): IID labels, provider sizes drawn from ``Dir(alpha)`` (quantity skew).

``min_size`` (default 1) guarantees every provider at least that many samples: Dirichlet draws
are repeated (with the next seed) until it holds; quantity skew tops small providers up from the
largest one.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from deai.core.registry import Registry
from deai.learn.errors import DataError, UnknownName

__all__ = ["PARTITIONERS", "dirichlet", "iid", "partition", "quantity", "shards"]

Partitioner = Callable[..., list[np.ndarray]]
PARTITIONERS: Registry[list[np.ndarray]] = Registry("partitioner", UnknownName)
"""Partition functions by name; add one with ``@PARTITIONERS.register("name")`` on the function."""


def _check(n_samples: int, n: int, min_size: int) -> None:
    if n < 1:
        raise DataError("need at least one provider")
    if n * min_size > n_samples:
        raise DataError(f"{n_samples} samples cannot give {n} providers {min_size} sample(s) each")


@PARTITIONERS.register("iid")
def iid(labels: np.ndarray, n: int, rng: np.random.Generator, min_size: int = 1) -> list[np.ndarray]:
    """A random permutation cut into ``n`` near-equal parts."""
    _check(len(labels), n, min_size)
    return [p.astype(np.int64) for p in np.array_split(rng.permutation(len(labels)), n)]


@PARTITIONERS.register("dirichlet")
def dirichlet(
    labels: np.ndarray, n: int, rng: np.random.Generator, alpha: float = 0.5, min_size: int = 1
) -> list[np.ndarray]:
    """Label skew: each class spread over providers in ``Dir(alpha)`` proportions."""
    if alpha <= 0:
        raise DataError("dirichlet: alpha must be positive")
    _check(len(labels), n, min_size)
    classes = np.unique(labels)
    for _ in range(1000):
        parts: list[list[np.ndarray]] = [[] for _ in range(n)]
        for c in classes:
            idx = rng.permutation(np.flatnonzero(labels == c))
            cuts = (np.cumsum(rng.dirichlet(np.full(n, alpha)))[:-1] * len(idx)).astype(int)
            for i, chunk in enumerate(np.split(idx, cuts)):
                parts[i].append(chunk)
        out = [np.concatenate(p).astype(np.int64) for p in parts]
        if min(len(p) for p in out) >= min_size:
            return [rng.permutation(p) for p in out]
    raise DataError(f"dirichlet: no draw gave every provider {min_size} samples (alpha={alpha} too small?)")


@PARTITIONERS.register("shards")
def shards(
    labels: np.ndarray, n: int, rng: np.random.Generator, classes_per_provider: int = 2, min_size: int = 1
) -> list[np.ndarray]:
    """Sort by label, cut into ``n * k`` shards, deal ``k`` random shards to each provider."""
    k = classes_per_provider
    if k < 1:
        raise DataError("shards: classes_per_provider must be at least 1")
    _check(len(labels), n, max(min_size, k))
    order = np.lexsort((rng.permutation(len(labels)), labels))  # by label, random within a label
    pieces = np.array_split(order, n * k)
    deal = rng.permutation(n * k)
    return [
        rng.permutation(np.concatenate([pieces[j] for j in deal[i * k : (i + 1) * k]])).astype(np.int64)
        for i in range(n)
    ]


@PARTITIONERS.register("quantity")
def quantity(
    labels: np.ndarray, n: int, rng: np.random.Generator, alpha: float = 1.0, min_size: int = 1
) -> list[np.ndarray]:
    """Quantity skew: IID samples, provider sizes in ``Dir(alpha)`` proportions."""
    if alpha <= 0:
        raise DataError("quantity: alpha must be positive")
    _check(len(labels), n, min_size)
    total = len(labels)
    sizes = np.floor(rng.dirichlet(np.full(n, alpha)) * (total - n * min_size)).astype(int) + min_size
    sizes[np.argmax(sizes)] += total - sizes.sum()  # rounding remainder to the largest provider
    perm = rng.permutation(total)
    return [p.astype(np.int64) for p in np.split(perm, np.cumsum(sizes)[:-1])]


def partition(
    labels: torch.Tensor | np.ndarray, num_providers: int, kind: str = "iid", *, seed: int = 0, **options
) -> list[np.ndarray]:
    """Split sample indices across ``num_providers`` with the named partitioner (see module doc)."""
    y = labels.numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if y.ndim != 1:
        raise DataError("partition: labels must be one-dimensional")
    fn = PARTITIONERS.get(kind)
    try:
        return fn(y, num_providers, np.random.default_rng(seed), **options)
    except TypeError as exc:
        raise DataError(f"partitioner {kind!r} does not take {sorted(options)}: {exc}") from exc
