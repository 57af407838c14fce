"""The split rule: how a task's escrowed budget is divided between compute and data providers.

A :class:`SplitRule` is part of a task's spec (so its hash is in the task's ``params`` on the ledger)
and is applied by :func:`allocate`, a pure integer function anyone can recompute:

1. ``compute_bps`` of the budget (basis points) is the **compute pool**. It is shared by the
   executors accepted in the task's verified jobs, in proportion to the fees of the job slots
   they won (``work``: address -> sum of accepted fees). Faulted or silent executors won nothing.
2. The rest is the **data pool**, shared by data providers in proportion to their accumulated
   contribution score, counting only positive totals: a provider whose total is zero or negative
   (free riders, noise, poisoners, merged copies) gets nothing. A positive total below
   ``min_share_bps`` of all positive totals is dropped too (dust not worth a claim).
3. An empty pool (no verified work, or no positive score) goes to the other pool when
   ``reassign_empty`` is set, else it stays in escrow and returns to the creator at ``close_task``.

Integer amounts are apportioned by the largest-remainder method (ties broken by address), so the
amounts sum exactly to each pool: nothing is created or lost to rounding.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Any

from deai.core.accounts import check_address
from deai.core.encoding import canonical, sha256_hex
from deai.ledger.config import BPS
from deai.protocol.incentives.errors import BadSplit

__all__ = ["Allocation", "SplitRule", "allocate", "apportion"]


@dataclass(frozen=True)
class SplitRule:
    """See the module docstring. The defaults: 20% compute, 80% data, no dust floor."""

    compute_bps: int = 2_000
    min_share_bps: int = 0
    reassign_empty: bool = True

    def __post_init__(self) -> None:
        for name in ("compute_bps", "min_share_bps"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= BPS:
                raise BadSplit(f"split rule: {name} must be an integer in [0, {BPS}], got {v!r}")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SplitRule:
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise BadSplit(f"split rule: unknown field(s) {unknown}")
        return cls(**data)

    @property
    def digest(self) -> str:
        return "0x" + sha256_hex(canonical({"deai-split-rule": self.to_json()}))


def apportion(total: int, weights: Mapping[str, float]) -> dict[str, int]:
    """Integer shares of ``total`` proportional to positive ``weights`` (largest remainder)."""
    live = {a: float(w) for a, w in weights.items() if w > 0}
    if total < 0:
        raise BadSplit(f"cannot apportion a negative total {total}")
    if not live or total == 0:
        return {}
    if not all(math.isfinite(w) for w in live.values()):
        raise BadSplit("weights must be finite")
    # Exact rational arithmetic: floats would let the floors overshoot the total near 2**53.
    frac = {a: Fraction(w) for a, w in live.items()}
    s = sum(frac.values())
    exact = {a: total * w / s for a, w in frac.items()}
    out = {a: math.floor(v) for a, v in exact.items()}
    left = total - sum(out.values())
    for a in sorted(live, key=lambda a: (-(exact[a] - out[a]), a))[:left]:
        out[a] += 1
    return {a: v for a, v in out.items() if v}


@dataclass
class Allocation:
    """Who gets what: per-address totals and the compute/data parts behind them."""

    budget: int
    compute: dict[str, int] = field(default_factory=dict)
    data: dict[str, int] = field(default_factory=dict)
    unallocated: int = 0

    @property
    def amounts(self) -> dict[str, int]:
        out: dict[str, int] = dict(self.compute)
        for a, v in self.data.items():
            out[a] = out.get(a, 0) + v
        return out

    @property
    def total(self) -> int:
        return sum(self.compute.values()) + sum(self.data.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "budget": self.budget,
            "total": self.total,
            "unallocated": self.unallocated,
            "compute": dict(sorted(self.compute.items())),
            "data": dict(sorted(self.data.items())),
        }


def allocate(
    budget: int, rule: SplitRule, scores: Mapping[str, float], work: Mapping[str, int]
) -> Allocation:
    """Split ``budget`` by ``rule`` given accumulated data ``scores`` and accepted compute ``work``."""
    if not isinstance(budget, int) or budget < 0:
        raise BadSplit(f"budget must be a non-negative integer, got {budget!r}")
    scores = {check_address(a): float(s) for a, s in scores.items()}
    work = {check_address(a): int(w) for a, w in work.items()}
    if any(not math.isfinite(s) for s in scores.values()) or any(w < 0 for w in work.values()):
        raise BadSplit("scores must be finite and work non-negative")
    positive = {a: s for a, s in scores.items() if s > 0}
    floor = sum(positive.values()) * rule.min_share_bps / BPS
    positive = {a: s for a, s in positive.items() if s >= floor}
    compute_pool = budget * rule.compute_bps // BPS
    data_pool = budget - compute_pool
    has_work, has_data = any(w > 0 for w in work.values()), bool(positive)
    if rule.reassign_empty:
        if not has_work and has_data:
            compute_pool, data_pool = 0, budget
        elif has_work and not has_data:
            compute_pool, data_pool = budget, 0
    compute = apportion(compute_pool, work) if has_work else {}
    data = apportion(data_pool, positive) if has_data else {}
    alloc = Allocation(budget, compute, data)
    alloc.unallocated = budget - alloc.total
    return alloc
