"""The aggregator base: validate ``n`` updates of ``d`` values, check the assumption, reduce.

An aggregator is built for a declared number ``f`` of Byzantine inputs it must tolerate. Calling it
on ``updates`` -- a float ``[n, d]`` tensor (one row per provider) or any
:class:`~deai.learn.aggregators.rows.Rows` source, e.g. :class:`~deai.learn.aggregators.rows.FileRows`
over update files that are never loaded whole -- and optional ``weights`` (``[n]``, e.g. sample
counts) returns one ``[d]`` vector. Both go through the same code: a tensor is wrapped as a
:class:`~deai.learn.aggregators.rows.TensorRows` source and every aggregator reduces block by block
over the parameter axis (see :mod:`deai.learn.aggregators.rows`). Before reducing it:

- refuses anything that is not a 2-D floating tensor (or a source) with at least one row and one
  column (:class:`BadUpdates`);
- refuses weights of the wrong shape, negative, non-finite or all zero (:class:`BadUpdates`);
- refuses rows holding NaN or infinity, naming them (:class:`BadUpdates`; a file source refuses
  them as it reads, naming the file);
- calls :meth:`Aggregator.check` ``(n, f)``, which raises :class:`AssumptionViolated` when the
  aggregator's robustness assumption (its ``assumption`` text, e.g. ``"2f < n"``) does not hold.

Weights are claims made by untrusted parties: only the (non-robust) mean uses them; robust
aggregators ignore them unless their docstring says otherwise.
Stateful aggregators (centered clipping, FoolsGold, bucketing's RNG) keep state across rounds;
:meth:`Aggregator.reset` clears it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch

from deai.core.registry import Registry
from deai.learn.aggregators.rows import Rows, TensorRows, all_finite
from deai.learn.errors import AssumptionViolated, BadUpdates, UnknownName

__all__ = [
    "AGGREGATORS",
    "PRE_AGGREGATORS",
    "Aggregator",
    "PreAggregator",
    "as_rows",
    "check_finite_rows",
    "validate_updates",
]


def check_finite_rows(updates: torch.Tensor | Rows) -> None:
    """Raise :class:`BadUpdates` naming the rows that hold NaN or infinity.

    Tensor fast path: one reduction (a non-finite entry makes the column sums non-finite); only
    when that trips (or a sum overflows) are the rows inspected one by one. A source is streamed.
    """
    if isinstance(updates, Rows):
        bad = updates.non_finite_rows()
    else:
        if bool(torch.isfinite(updates.sum(0)).all()):
            return
        bad = (~torch.isfinite(updates)).any(1).nonzero().flatten().tolist()
    if bad:
        shown = ", ".join(map(str, bad[:10])) + (" ..." if len(bad) > 10 else "")
        raise BadUpdates(f"{len(bad)} update(s) hold NaN or infinity: rows {shown}")


def as_rows(updates: torch.Tensor | Rows) -> Rows:
    """``updates`` as a row source, refusing anything but a 2-D floating tensor or a source with at
    least one row and one column (:class:`BadUpdates`)."""
    if isinstance(updates, Rows):
        rows = updates
    elif not isinstance(updates, torch.Tensor):
        raise BadUpdates(f"updates must be a tensor, got {type(updates).__name__}")
    elif updates.dim() != 2:
        raise BadUpdates(f"updates must be stacked as [n, d]; got shape {tuple(updates.shape)}")
    else:
        rows = TensorRows(updates)
    if rows.n < 1 or rows.d < 1:
        raise BadUpdates(f"updates must hold at least one row and one column; got ({rows.n}, {rows.d})")
    if not rows.dtype.is_floating_point:
        raise BadUpdates(f"updates must be floating point; got {rows.dtype}")
    return rows


def validate_updates(
    updates: torch.Tensor | Rows, weights: torch.Tensor | None = None, *, finite: bool = True
) -> tuple[Rows, torch.Tensor | None]:
    """Check the shape, dtype and (optionally) finiteness of the updates and their weights; return
    them as a row source. A source that checks what it reads (files) gets no extra pass."""
    rows = as_rows(updates)
    if weights is not None:
        if not isinstance(weights, torch.Tensor) or weights.shape != (rows.n,):
            shape = tuple(weights.shape) if isinstance(weights, torch.Tensor) else type(weights).__name__
            raise BadUpdates(f"weights must have shape ({rows.n},); got {shape}")
        weights = weights.to(rows.dtype)
        if not bool(torch.isfinite(weights).all()) or bool((weights < 0).any()) or float(weights.sum()) <= 0:
            raise BadUpdates("weights must be finite, non-negative and not all zero")
    if finite and not rows.checks_on_read:
        check_finite_rows(rows.updates if isinstance(rows, TensorRows) else rows)
    return rows, weights


class Aggregator(ABC):
    """Reduce ``n`` updates of ``d`` values to ``[d]`` while tolerating ``f`` Byzantine rows."""

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
        self, updates: torch.Tensor | Rows, weights: torch.Tensor | None = None, **context: torch.Tensor
    ) -> torch.Tensor:
        rows, weights = validate_updates(updates, weights, finite=not self.checks_output_only)
        self.check(rows.n, self.f)
        out = self.reduce(rows, weights, **context)
        if self.checks_output_only and not all_finite(out):
            check_finite_rows(rows)  # names the offending rows
            raise BadUpdates(f"{self.name}: the aggregate overflowed to a non-finite value")
        return out

    def aggregate(
        self, updates: torch.Tensor | Rows, weights: torch.Tensor | None, **context: torch.Tensor
    ) -> torch.Tensor:
        """:meth:`reduce` without the validation and assumption check of a call (a tensor is
        wrapped as a :class:`TensorRows` source): for kernels that were checked already."""
        return self.reduce(as_rows(updates), weights, **context)

    @abstractmethod
    def reduce(self, rows: Rows, weights: torch.Tensor | None, **context: torch.Tensor) -> torch.Tensor:
        """What a subclass implements: reduce validated ``rows`` (the assumption already checked)
        to one ``[d]`` vector, streaming over the source block by block (``rows.chunks()`` and the
        reductions of :class:`Rows`), never materializing it."""

    def reset(self) -> None:
        """Forget state kept across rounds (no-op for stateless aggregators)."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(f={self.f})"


class PreAggregator(Aggregator):
    """Turns the ``n`` rows into ``m`` mixed rows (a lazy source), then hands them to ``inner``."""

    def __init__(self, inner: Aggregator, f: int | None = None) -> None:
        super().__init__(inner.f if f is None else f)
        self.inner = inner

    @abstractmethod
    def mix(self, rows: Rows, **context: Any) -> Rows:
        """The mixed / bucketed rows passed to the inner aggregator, as a lazy source over ``rows``."""

    def transform(self, updates: torch.Tensor, **context: Any) -> torch.Tensor:
        """:meth:`mix` on an in-memory ``[n, d]`` tensor, materialized (for inspection and tests)."""
        return self.mix(as_rows(updates), **context).materialize()

    def inner_shape(self, n: int, f: int) -> tuple[int, int]:
        """How many vectors, and how many of them possibly Byzantine, the inner aggregator sees."""
        return n, f

    def check(self, n: int, f: int) -> None:
        super().check(n, f)
        self.inner.check(*self.inner_shape(n, f))

    def reduce(self, rows: Rows, weights: torch.Tensor | None, **context: torch.Tensor) -> torch.Tensor:
        # Weights do not survive mixing; the inner aggregator sees unweighted vectors.
        return self.inner.reduce(self.mix(rows), None, **context)

    def reset(self) -> None:
        self.inner.reset()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(f={self.f}) + {self.inner!r}"


AGGREGATORS: Registry[Aggregator] = Registry("aggregator", UnknownName, stamp="name")
"""Every final aggregator, by name and alias."""

PRE_AGGREGATORS: Registry[PreAggregator] = Registry("pre-aggregator", UnknownName, stamp="name")
"""Pre-aggregators, which wrap an inner aggregator."""
