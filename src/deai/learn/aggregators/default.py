"""``default``: the project's recommended defense, sized for the round at hand.

A task that names no aggregator, or names ``default``, gets this rule. It resolves, on every call,
to the root gate before centered clipping (:mod:`.root_gate`, :mod:`.centered_clipping`):

1. the **root gate** drops the rows that point away from the server's own update ``g0`` on clean
   root data (``cos(x_i, g0) <= 0``: sign flips, inner-product manipulation, zero updates of free
   riders), keeping at least the ``n - f`` most aligned rows, and adds ``g0`` itself as one more
   (honest) row (``root_row=True``);
2. **centered clipping** with an adaptive radius, ``RADIUS_SCALE`` times the median distance of
   the rows to the centre, bounds what any kept row can do.

``f``: the spec's ``f`` when it is positive; with ``f = 0`` (a task that declares nothing) the rule
derives it from the ``n`` rows it is given (:func:`default_f`): a quarter of the rows rounded up,
``ceil(n / 4)``, capped at the composed rule's limit ``floor((n - 1) / 3)`` (centered clipping needs
``2 f < n - f`` on the ``n - f`` rows the gate may leave it). Why a quarter: it is the Byzantine share
the robustness table attacks with, and ``f`` sets how many misaligned rows the gate may drop (it
keeps every row with a positive cosine, and at least ``n - f``): with 5 sign flippers among 20 rows,
``floor((n - 1) / 4) = 4`` would make the gate keep one of them. Why not the limit itself: ``f`` is
also the number of rows the gate may drop when the root update disagrees with honest rows, and at
a quarter the clipping stage still sees at least three quarters of the rows, at most a third of
them Byzantine, so its median-based radius lies among honest distances with a margin.

Why a radius of 1.5 x the median distance and not the median itself (the setting of
``root_gate+centered_clipping``): under pathological label skew (McMahan's shards, two classes per
provider) the honest rows are spread out but their distances to the centre are concentrated (the
largest within ~1.3 x the median, measured on digits with 20 providers), and a median radius clips
half of the honest rows in every round. The clipped rows are those of the providers whose classes
are hardest, so their classes learn more slowly: on shards(2), 8 rounds without provider momentum,
centered clipping with a median radius over the 15 honest rows alone ended 4.5 points below their
plain mean; at 1.5 x the median it ends at the mean's accuracy. A row farther than 1.5 x the typical
honest distance (noise, a huge row, a model-replacement row) is still clipped, so the Byzantine pull
stays bounded by ``f / (n - f) * 1.5 * median`` at the fixed point.

Why the root row: the other half of the loss under shards is the data the Byzantine providers
hold. With 25% of providers attacking, a quarter of the shards (most of a class, sometimes) is
missing from the honest rows, and no rule over the honest rows alone can recover it (their plain
mean ended 4.2 points below the attack-free mean in the same 8-round setting, 2 points at 30
rounds with momentum). The root data covers every class, and its update is honest by
construction, so the gate hands it to the clipping stage as one more row: on shards(2) with 5 of
20 providers sign-flipping, 30 rounds, 90.5% without it and 91.9% with it (attack-free 93.0 and
93.3). In the network the root data is the task's public validation data, trained on by the
verified ``aggregate`` job, so the row is as trustworthy as the gate's reference.

The rule needs the server's root update (``root_update=``, :func:`~deai.learn.aggregators.needs_root_update`
is true), like the root gate, and keeps centered clipping's centre across calls (:meth:`reset` clears
it; the network builds the aggregator afresh for every round's job, so there it starts at zero).
"""

from __future__ import annotations

import torch

from deai.learn.aggregators.base import AGGREGATORS, Aggregator
from deai.learn.aggregators.centered_clipping import CenteredClipping
from deai.learn.aggregators.root_gate import RootGate
from deai.learn.aggregators.rows import Rows

__all__ = ["DEFAULT_RULE", "RADIUS_SCALE", "Default", "default_f", "describe_default"]

RADIUS_SCALE = 1.5
"""Centered clipping's radius in the default: this many times the median distance to the centre."""

DEFAULT_RULE = f"root_gate(root_row=True)+centered_clipping(scale={RADIUS_SCALE})"
"""The spec string the default resolves to (with the ``f`` of :func:`default_f`)."""


def default_f(n: int, f: int) -> int:
    """The ``f`` the default runs with over ``n`` rows: ``f`` itself when positive, else
    ``min(ceil(n / 4), floor((n - 1) / 3))`` (a quarter of the rows within the rule's ``3 f < n``;
    see the module docstring). 1 to 3 rows get ``f = 0``."""
    if n < 1 or f < 0:
        raise ValueError(f"default: need n >= 1 and f >= 0, got n={n}, f={f}")
    return f if f > 0 else min(-(-n // 4), (n - 1) // 3)


def describe_default(n: int, f: int, *, secure_aggregation: bool, dp_mode: str | None) -> str:
    """The concrete rule a task with ``aggregator: default`` runs over ``n`` rows, in words (for
    the orchestrator to print and record in reports).

    ``n`` is the number of rows the aggregation job sees: the contributors, or the bucket means
    under secure aggregation; ``f`` the task spec's (0 = derived from ``n``). ``dp_mode`` is the
    task's DP mode (``None``: no DP). Under central DP the network runs ``dp_aggregate`` (clip
    every update, sum, add Gaussian noise) instead of any robust rule, and the text says so.
    """
    if dp_mode == "central":
        return (
            "dp_aggregate (central DP: each update clipped to the DP norm, summed, Gaussian noise "
            "added; no robust aggregation)"
        )
    g = default_f(n, f)
    rows = "bucket means" if secure_aggregation else "updates"
    text = (
        f"root_gate+centered_clipping (f={g} of {n} {rows}; the root update as one more row, "
        f"clipping radius {RADIUS_SCALE} x the median distance)"
    )
    if not 3 * g < n:
        text += ": refused, it needs 3f < n"
    if secure_aggregation:
        text += ", over secure-aggregation buckets"
    if dp_mode in ("local", "distributed"):
        text += f", on updates noised by the providers ({dp_mode} DP)"
    return text


@AGGREGATORS.register("default")
class Default(Aggregator):
    """The recommended defense, :data:`DEFAULT_RULE` (the root gate with the root update as one
    more row, then centered clipping at 1.5 x the median distance), at the ``f`` of
    :func:`default_f` for the ``n`` rows of each call (see the module docstring).

    Pass ``root_update=g0`` on every call. After a call, :attr:`f_used` is the ``f`` it ran with
    and :attr:`kept` the indices of the rows the gate kept. Assumption: ``3 f < n`` at the ``f``
    used (always true when ``f`` is derived) and a clean root update.
    """

    assumption = "3f < n (f derived from n when 0) and a clean root update"
    needs_root = True

    def __init__(self, f: int = 0) -> None:
        super().__init__(f)
        self.clipping = CenteredClipping(f, quantile=0.5, scale=RADIUS_SCALE)
        self.f_used: int | None = None
        self.kept: torch.Tensor | None = None

    def gate(self, n: int) -> RootGate:
        """The composed rule for ``n`` rows (the clipping stage, and its centre, are shared)."""
        f = default_f(n, self.f)
        self.clipping.f = f
        return RootGate(self.clipping, f=f, root_row=True)

    def check(self, n: int, f: int) -> None:
        g = default_f(n, f)
        if not 3 * g < n:
            self._violated(n, g)
        self.gate(n).check(n, g)

    def reduce(self, rows: Rows, weights: torch.Tensor | None, **context: torch.Tensor) -> torch.Tensor:
        gate = self.gate(rows.n)
        out = gate.reduce(rows, None, **context)
        self.f_used, self.kept = gate.f, gate.kept
        return out

    def reset(self) -> None:
        self.clipping.reset()

    def __repr__(self) -> str:
        return f"Default(f={self.f}: {DEFAULT_RULE})"
