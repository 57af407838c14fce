"""The aggregator base: validate a stacked ``[n, d]`` tensor of updates, check the assumption, reduce.

An aggregator is built for a declared number ``f`` of Byzantine inputs it must tolerate. Calling it
on ``updates`` (float ``[n, d]``, one row per provider) and optional ``weights`` (``[n]``, e.g. sample
counts) returns one ``[d]`` vector. Before reducing it:

- refuses anything that is not a 2-D floating tensor with at least one row (:class:`BadUpdates`);
- refuses weights of the wrong shape, negative, non-finite or all zero (:class:`BadUpdates`);
- refuses rows holding NaN or infinity, naming them (:class:`BadUpdates`);
- calls :meth:`Aggregator.check` ``(n, f)``, which raises :class:`AssumptionViolated` when the
  aggregator's robustness assumption (its ``assumption`` text, e.g. ``"2f < n"``) does not hold.

Weights are claims made by untrusted parties: only the (non-robust) mean uses them; robust
aggregators ignore them unless their docstring says otherwise.
Stateful aggregators (centered clipping, FoolsGold, bucketing's RNG) keep state across rounds;
:meth:`Aggregator.reset` clears it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import torch

from deai.core.registry import Registry
from deai.learn.errors import AssumptionViolated, BadUpdates, UnknownName

__all__ = [
    "AGGREGATORS",
    "PRE_AGGREGATORS",
    "Aggregator",
    "PreAggregator",
    "check_finite_rows",
    "validate_updates",
]


def check_finite_rows(updates: torch.Tensor) -> None:
    """Raise :class:`BadUpdates` naming the rows that hold NaN or infinity.

    Fast path: one reduction (a non-finite entry makes the column sums non-finite); only when that
    trips (or a sum overflows) are the rows inspected one by one.
    """
    if bool(torch.isfinite(updates.sum(0)).all()):
        return
    bad = (~torch.isfinite(updates)).any(1).nonzero().flatten().tolist()
    if bad:
        shown = ", ".join(map(str, bad[:10])) + (" ..." if len(bad) > 10 else "")
        raise BadUpdates(f"{len(bad)} update(s) hold NaN or infinity: rows {shown}")


def validate_updates(
    updates: torch.Tensor, weights: torch.Tensor | None = None, *, finite: bool = True
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Check the shape, dtype and (optionally) finiteness of stacked updates and their weights."""
    if not isinstance(updates, torch.Tensor):
        raise BadUpdates(f"updates must be a tensor, got {type(updates).__name__}")
    if updates.dim() != 2:
        raise BadUpdates(f"updates must be stacked as [n, d]; got shape {tuple(updates.shape)}")
    if updates.shape[0] < 1 or updates.shape[1] < 1:
        raise BadUpdates(f"updates must hold at least one row and one column; got {tuple(updates.shape)}")
    if not updates.is_floating_point():
        raise BadUpdates(f"updates must be floating point; got {updates.dtype}")
    if weights is not None:
        if not isinstance(weights, torch.Tensor) or weights.shape != (updates.shape[0],):
            shape = tuple(weights.shape) if isinstance(weights, torch.Tensor) else type(weights).__name__
            raise BadUpdates(f"weights must have shape ({updates.shape[0]},); got {shape}")
        weights = weights.to(updates.dtype)
        if not bool(torch.isfinite(weights).all()) or bool((weights < 0).any()) or float(weights.sum()) <= 0:
            raise BadUpdates("weights must be finite, non-negative and not all zero")
    if finite:
        check_finite_rows(updates)
    return updates, weights


class Aggregator(ABC):
    """Reduce ``[n, d]`` updates to ``[d]`` while tolerating ``f`` Byzantine rows."""

    name: ClassVar[str] = "aggregator"
    assumption: ClassVar[str] = "f < n"
    # Linear aggregators propagate any NaN/inf to their output, so checking the (small) output
    # replaces a full pass over the inputs; robust ones could hide a NaN and must check inputs.
    checks_output_only: ClassVar[bool] = False
    # Whether it wants the server's update on clean root data as ``root_update=`` on every call.
    needs_root: ClassVar[bool] = False

    def __init__(self, f: int = 0) -> None:
        if not isinstance(f, int) or f < 0:
            raise ValueError(f"{self.name}: f must be a non-negative integer, got {f!r}")
        self.f = f

    def check(self, n: int, f: int) -> None:
        """Raise :class:`AssumptionViolated` if ``n`` inputs with ``f`` Byzantine break the assumption."""
        if f >= n:
            self._violated(n, f)

    def _violated(self, n: int, f: int) -> None:
        raise AssumptionViolated(f"{self.name} needs {self.assumption}; got n={n}, f={f}")

    def __call__(
        self, updates: torch.Tensor, weights: torch.Tensor | None = None, **context: torch.Tensor
    ) -> torch.Tensor:
        updates, weights = validate_updates(updates, weights, finite=not self.checks_output_only)
        self.check(updates.shape[0], self.f)
        out = self.aggregate(updates, weights, **context)
        if self.checks_output_only and not bool(torch.isfinite(out).all()):
            check_finite_rows(updates)  # names the offending rows
            raise BadUpdates(f"{self.name}: the aggregate overflowed to a non-finite value")
        return out

    @abstractmethod
    def aggregate(
        self, updates: torch.Tensor, weights: torch.Tensor | None, **context: torch.Tensor
    ) -> torch.Tensor:
        """Reduce validated ``updates`` (the assumption already checked) to one vector."""

    def reset(self) -> None:
        """Forget state kept across rounds (no-op for stateless aggregators)."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(f={self.f})"


class PreAggregator(Aggregator):
    """Transforms the ``[n, d]`` updates into ``[m, d]`` vectors, then hands them to ``inner``."""

    def __init__(self, inner: Aggregator, f: int | None = None) -> None:
        super().__init__(inner.f if f is None else f)
        self.inner = inner

    @abstractmethod
    def transform(self, updates: torch.Tensor) -> torch.Tensor:
        """The mixed / bucketed vectors passed to the inner aggregator."""

    def inner_shape(self, n: int, f: int) -> tuple[int, int]:
        """How many vectors, and how many of them possibly Byzantine, the inner aggregator sees."""
        return n, f

    def check(self, n: int, f: int) -> None:
        super().check(n, f)
        self.inner.check(*self.inner_shape(n, f))

    def aggregate(
        self, updates: torch.Tensor, weights: torch.Tensor | None, **context: torch.Tensor
    ) -> torch.Tensor:
        # Weights do not survive mixing; the inner aggregator sees unweighted vectors.
        return self.inner.aggregate(self.transform(updates), None, **context)

    def reset(self) -> None:
        self.inner.reset()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(f={self.f}) + {self.inner!r}"


AGGREGATORS: Registry[Aggregator] = Registry("aggregator", UnknownName, stamp="name")
"""Every final aggregator, by name and alias."""

PRE_AGGREGATORS: Registry[PreAggregator] = Registry("pre-aggregator", UnknownName, stamp="name")
"""Pre-aggregators, which wrap an inner aggregator."""
