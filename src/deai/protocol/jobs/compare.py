"""Comparing revealed outputs: agreement, agreement classes, and the majority decision.

Two rules, declared per job kind:

- **bit-exact**: two outputs agree iff their :func:`~deai.core.tensorio.tensor_digest` is equal. Use it
  where the computation gives the same bits on every platform (integer work, element-wise maps).
- **tolerance** ``(rtol, atol)``: two outputs agree iff every float element satisfies
  ``|a - b| <= atol + rtol * max(|a|, |b|)`` (symmetric, so agreement does not depend on who is
  "reference"); integer and bool tensors must still be equal. We compare the revealed values
  themselves, never a hash of rounded values: rounding to a grid splits two honest results that
  straddle a grid boundary however close they are.

Tolerance agreement is not transitive (a ~ b and b ~ c do not give a ~ c), so "classes" are the
connected components of the agreement graph, and the decision is made on *support*: the support of
output ``i`` is the set of outputs within tolerance of it (itself included). The output with the
largest support wins if that support is a strict majority of the executors that were due to answer
(``quorum``; silent and refused executors count against it); ties go to the earliest drawn executor.
Every output in the winner's support is accepted as agreeing; everyone else is in the minority.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch

from deai.core.tensorio import tensor_digest
from deai.protocol.jobs.errors import BadJobSpec

__all__ = [
    "CompareRule",
    "Decision",
    "agreement_classes",
    "agreement_matrix",
    "agrees",
    "decide",
    "max_deviation",
]

Output = Mapping[str, torch.Tensor]


@dataclass(frozen=True)
class CompareRule:
    """How a job kind's outputs are compared: ``exact`` digests, or within ``rtol``/``atol``."""

    exact: bool = True
    rtol: float = 0.0
    atol: float = 0.0

    def __post_init__(self) -> None:
        if not (self.rtol >= 0 and self.atol >= 0) or self.rtol != self.rtol or self.atol != self.atol:
            raise BadJobSpec(
                f"tolerances must be non-negative numbers, got rtol={self.rtol} atol={self.atol}"
            )
        if self.exact and (self.rtol or self.atol):
            raise BadJobSpec("a bit-exact rule takes no tolerance")

    @classmethod
    def bit_exact(cls) -> CompareRule:
        return cls(True, 0.0, 0.0)

    @classmethod
    def tolerance(cls, rtol: float, atol: float) -> CompareRule:
        return cls(False, float(rtol), float(atol))

    def to_json(self) -> dict:
        return {"exact": self.exact, "rtol": self.rtol, "atol": self.atol}

    def __str__(self) -> str:
        return "bit-exact" if self.exact else f"rtol={self.rtol:g}, atol={self.atol:g}"


def _same_layout(a: Output, b: Output) -> bool:
    if set(a) != set(b):
        return False
    return all(a[k].shape == b[k].shape and a[k].dtype == b[k].dtype for k in a)


def max_deviation(a: Output, b: Output) -> tuple[float, float]:
    """(max absolute, max relative) element deviation between two outputs of the same layout."""
    worst_abs, worst_rel = 0.0, 0.0
    for k in sorted(a):
        x, y = a[k].double(), b[k].double()
        if x.numel() == 0:
            continue
        diff = (x - y).abs()
        scale = torch.maximum(x.abs(), y.abs())
        worst_abs = max(worst_abs, float(diff.max()))
        rel = torch.where(scale > 0, diff / scale.clamp_min(torch.finfo(torch.float64).tiny), 0.0)
        worst_rel = max(worst_rel, float(rel.max()))
    return worst_abs, worst_rel


def agrees(a: Output, b: Output, rule: CompareRule) -> bool:
    """True iff two outputs agree under ``rule`` (same names, shapes, dtypes, and values)."""
    if not _same_layout(a, b):
        return False
    if rule.exact:
        return tensor_digest(a) == tensor_digest(b)
    for k in a:
        x, y = a[k], b[k]
        if not x.is_floating_point():
            if not torch.equal(x, y):
                return False
            continue
        x, y = x.double(), y.double()
        bound = rule.atol + rule.rtol * torch.maximum(x.abs(), y.abs())
        if not bool(((x - y).abs() <= bound).all()):
            return False
    return True


def agreement_matrix(outputs: Sequence[Output | None], rule: CompareRule) -> torch.Tensor:
    """``[m, m]`` bool: entry (i, j) is True iff outputs i and j agree. ``None`` agrees with nothing."""
    m = len(outputs)
    mat = torch.zeros(m, m, dtype=torch.bool)
    if rule.exact:
        digests = [tensor_digest(o) if o is not None else None for o in outputs]
        for i in range(m):
            for j in range(m):
                mat[i, j] = digests[i] is not None and digests[i] == digests[j]
        return mat
    for i in range(m):
        if outputs[i] is None:
            continue
        mat[i, i] = True
        for j in range(i + 1, m):
            oi, oj = outputs[i], outputs[j]
            if oi is not None and oj is not None and agrees(oi, oj, rule):
                mat[i, j] = mat[j, i] = True
    return mat


def agreement_classes(outputs: Sequence[Output | None], rule: CompareRule) -> list[list[int]]:
    """Connected components of the agreement graph over the non-``None`` outputs, largest first."""
    mat = agreement_matrix(outputs, rule)
    seen: set[int] = set()
    classes = []
    for start in range(len(outputs)):
        if outputs[start] is None or start in seen:
            continue
        comp, stack = [], [start]
        seen.add(start)
        while stack:
            i = stack.pop()
            comp.append(i)
            for j in mat[i].nonzero().flatten().tolist():
                if j not in seen:
                    seen.add(j)
                    stack.append(j)
        classes.append(sorted(comp))
    return sorted(classes, key=lambda c: (-len(c), c[0]))


@dataclass(frozen=True)
class Decision:
    """The outcome of comparing one job's outputs (indices refer to the ``outputs`` list).

    ``winner`` is the index whose output is accepted (None without a majority); ``majority`` the
    indices that agree with it; ``minority`` every other index, silent ones included;
    ``unanimous`` is True when every valid output agrees with the winner.
    """

    winner: int | None
    majority: tuple[int, ...]
    minority: tuple[int, ...]
    classes: tuple[tuple[int, ...], ...] = field(default=())

    @property
    def unanimous(self) -> bool:
        return self.winner is not None and len(self.classes) == 1


def decide(outputs: Sequence[Output | None], rule: CompareRule, *, quorum: int | None = None) -> Decision:
    """Majority decision over outputs (``None`` = silent or refused); see the module doc.

    ``quorum`` is the number of executors that were due to answer (default: ``len(outputs)``).
    """
    quorum = len(outputs) if quorum is None else quorum
    mat = agreement_matrix(outputs, rule)
    classes = tuple(tuple(c) for c in agreement_classes(outputs, rule))
    support = mat.sum(1)
    everyone = tuple(range(len(outputs)))
    if len(outputs) == 0 or int(support.max()) * 2 <= quorum:
        return Decision(None, (), everyone, classes)
    winner = int(torch.argmax(support))  # first index among ties: the earliest drawn executor
    majority = tuple(mat[winner].nonzero().flatten().tolist())
    minority = tuple(i for i in everyone if i not in majority)
    return Decision(winner, majority, minority, classes)
