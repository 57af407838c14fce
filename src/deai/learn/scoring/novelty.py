"""Novelty checks: which updates of a round carry no new work, so they earn nothing.

:func:`check_updates` flags each provider of a round (:class:`Flag`); a flagged provider's score is 0
(the scorers leave it out of the game, :meth:`deai.learn.scoring.Scorer.__call__`), except that a
``COPY`` is merged into the player of the update it copies, whose value goes to the first committer
(``rank``: the commit ranks the network passes; by default the row order). The checks, in this
order of precedence:

- ``ZERO``: the update's norm is below ``zero`` (5%) of the round's median norm (free riders: zero
  or near-zero updates). A zero update still moves the FedAvg mean (it dilutes it), which a scorer
  may credit; this check is why it earns nothing.
- ``PUBLIC``: the update is, up to its scale and the round's mean, the update the task's recipe
  produces on the task's *public* root data from this round's checkpoint (``public``, trained by
  every executor; see the ``contribution_score`` job). Measured as the copy test below against
  that update, with its own threshold ``public`` (0.5): the public data is small, so two trainings
  of it with other batch orders differ more than two of a provider's larger data (statistic
  0.15-0.28 on digits' 135 public samples, while honest providers against the public update stay
  above 0.9). Training on public data plus a little private data is not caught.
- ``STALE_GLOBAL``: cosine with the previous round's global update (``previous``) at least
  ``stale`` (0.99): a re-sent aggregate.
- ``REPLAY``: cosine of its count sketch (:mod:`deai.learn.scoring.sketch`) with the sketch of an
  update of an earlier round (``history``, within the window) at least ``replay`` (0.99). Exact and
  scaled replays have sketch cosine 1; an honest provider's next-round update on the same data
  stays far below (measured in ``docs/results/incentives.md``).
- ``COPY`` (of an earlier update of this round): ``u_i`` is explained by an earlier ``u_j`` and the
  round's mean ``m``: the squared residual of ``u_i - m`` regressed on ``span{u_j - m, m}`` is below
  ``copy`` (0.15) times the round's median squared spread ``median ||(u - m) perp m||^2``. Honest IID
  updates differ by their own data's noise (ratio about 1, concentrated in high dimension); a copy,
  a scaled copy or a re-training of the same data with another batch order differ by much less.
  Centring on the mean is what keeps honest IID providers apart: their *raw* cosines are high
  because they share the round's common direction. Any pair with raw ``1 - cos^2 <= exact`` is a
  copy whatever the round's size. Credit goes to the first of a group (chains resolved), and only
  an earlier row not flagged so far is linked to. A row whose own spread is below
  ``consensus_residual`` of the round's is mean-like: its direction is noise, the consensus test
  judges it.
- ``CONSENSUS`` (ALIE-like, "built from the others' mean"): among the rows not flagged above, the
  residual to their mean is below ``consensus_residual`` (0.1) of their median residual (a
  pre-averaged update: ALIE with ``|z| <~ 0.3``), or its cosine with the coordinate-wise standard
  deviation is at least ``consensus_align`` (0.5) in absolute value (ALIE's ``mean -/+ z * std`` has
  a residual proportional to ``std``, any ``z``; an honest residual's signs are random, cosine ~0).

**What the checks cannot catch** (see ``docs/incentives.md``): an ALIE-like update with random signs
per coordinate and ``z`` near 1 looks like one more honest update; a copy or replay with added noise
of the honest noise's size; a provider training on the public data plus some private data; a
replay older than the window. The spread-relative tests (``COPY`` beyond exact copies, ``CONSENSUS``)
need at least ``min_rows`` (3) rows and a majority of honest rows (the medians).

Everything is deterministic: float64 Gram matrices and fixed reductions, no randomness. Cost:
``O(n^2 d)`` for the Gram matrices, ``O(n d)`` for the rest, ``O(n h k)`` for the replay test.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import torch

from deai.learn.errors import BadUpdates
from deai.learn.scoring.sketch import SKETCH_DIM, count_sketch

__all__ = ["Flag", "NoveltyConfig", "NoveltyResult", "check_updates"]


class Flag(IntEnum):
    """Why a provider's update earns nothing (``OK``: it is scored)."""

    OK = 0
    ZERO = 1
    COPY = 2
    REPLAY = 3
    STALE_GLOBAL = 4
    PUBLIC = 5
    CONSENSUS = 6


@dataclass(frozen=True)
class NoveltyConfig:
    """The checks' thresholds (see the module docstring for each one's meaning)."""

    zero: float = 0.05
    copy: float = 0.15
    public: float = 0.5
    exact: float = 1e-6
    replay: float = 1e-4
    consensus_residual: float = 0.1
    consensus_align: float = 0.5
    min_rows: int = 5

    def __post_init__(self) -> None:
        for name in ("zero", "copy", "public", "exact", "replay", "consensus_residual"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"novelty: {name} must lie in [0, 1)")
        if not 0.0 < self.consensus_align <= 1.0:
            raise ValueError("novelty: consensus_align must lie in (0, 1]")
        if self.min_rows < 3:
            raise ValueError("novelty: min_rows must be >= 3")


@dataclass(frozen=True)
class NoveltyResult:
    """Per-provider ``flags`` (long ``[n]``, :class:`Flag` values) and ``source`` (long ``[n]``: for
    ``COPY`` the provider copied (the group's first), for ``REPLAY`` the history row, else -1), the
    round's ``sketches`` (float64 ``[n, k]``) and the statistics behind the flags (float64 ``[n]``):
    ``copy_ratio`` (smallest over earlier rows), ``public_ratio``, ``stale_cos``, ``replay_cos``
    (largest over history), ``consensus_residual`` and ``consensus_align`` (NaN where not computed)."""

    flags: torch.Tensor
    source: torch.Tensor
    sketches: torch.Tensor
    copy_ratio: torch.Tensor
    public_ratio: torch.Tensor
    stale_ratio: torch.Tensor
    replay_ratio: torch.Tensor
    consensus_residual: torch.Tensor
    consensus_align: torch.Tensor

    @property
    def ok(self) -> torch.Tensor:
        """Bool ``[n]``: providers that are scored as themselves."""
        return self.flags == int(Flag.OK)

    def leader(self) -> torch.Tensor:
        """Long ``[n]``: each provider's player (its own index, or the provider a ``COPY`` copies)."""
        idx = torch.arange(self.flags.shape[0])
        return torch.where(self.flags == int(Flag.COPY), self.source, idx)

    def active(self) -> torch.Tensor:
        """Bool ``[n]``: providers in the scoring game: ``OK`` ones, and copies of an ``OK`` one."""
        lead = self.leader()
        return self.flags[lead] == int(Flag.OK)


def _nan(n: int) -> torch.Tensor:
    return torch.full((n,), float("nan"), dtype=torch.float64)


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(torch.float64).tiny)


def _similar(
    f_rows: torch.Tensor, f_refs: torch.Tensor, scale: float, threshold: float, floor: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(1 - cos^2 [n, r], hit [n, r])`` of rows against references (both already centred and
    orthogonal to the round's mean): a hit when the row is explained by the reference up to a
    squared residual below ``threshold`` of the row itself *and* of the round's spread ``scale``.
    A row whose own spread is below ``floor * scale`` is mean-like (left to the consensus test:
    its direction is noise)."""
    tiny = torch.finfo(torch.float64).tiny
    g_ii = (f_rows * f_rows).sum(1)[:, None]
    g_jj = (f_refs * f_refs).sum(1)[None]
    g_ij = f_rows @ f_refs.T
    cos2 = (g_ij**2 / (g_ii * g_jj).clamp_min(tiny)).clamp(0.0, 1.0)
    residual = g_ii * (1.0 - cos2)
    hit = (1.0 - cos2 < threshold) & (residual < threshold * scale) & (g_jj > 0) & (g_ii >= floor * scale)
    return 1.0 - cos2, hit


def _roots(link: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """Each row's first (in ``order``) earlier linked row, chains resolved to the group's first member."""
    n = link.shape[0]
    idx = torch.arange(n)
    first = torch.where(link, order[None].expand(n, n), n).argmin(1)
    leader = torch.where(link.any(1), first, idx)
    for _ in range(max(1, n.bit_length())):
        nxt = leader[leader]
        if torch.equal(nxt, leader):
            break
        leader = nxt
    return leader


def check_updates(
    updates: torch.Tensor,
    *,
    public: torch.Tensor | None = None,
    previous: torch.Tensor | None = None,
    history: torch.Tensor | None = None,
    config: NoveltyConfig | None = None,
    rank: torch.Tensor | None = None,
) -> NoveltyResult:
    """Flag the rows of ``updates`` (``[n, d]``); see the module docstring.

    ``public``: the public-data update ``[d]``; ``previous``: the previous global update ``[d]``;
    ``history``: sketches ``[h, k]`` of earlier rounds' updates (``k`` = :data:`SKETCH_DIM`);
    ``rank``: each row's commit rank (a permutation of ``0..n-1``; default: the row order), which
    decides only who committed "first" in a group of copies -- everything else is computed in row
    order, so a canonical row order keeps the scores independent of arrival timing.
    """
    cfg = config or NoveltyConfig()
    if updates.dim() != 2 or updates.shape[0] < 1 or not updates.is_floating_point():
        raise BadUpdates(f"updates must be a float [n, d] tensor, got {tuple(updates.shape)}")
    n, d = updates.shape
    u = updates.double()
    for name, ref in (("public", public), ("previous", previous)):
        if ref is not None and (ref.shape != (d,) or not ref.is_floating_point()):
            raise BadUpdates(f"{name} must be a float vector of {d} entries")
    if history is not None and (history.dim() != 2 or history.shape[1] != SKETCH_DIM):
        raise BadUpdates(f"history must be [h, {SKETCH_DIM}] sketches, got {tuple(history.shape)}")
    tensors = [u] + [t for t in (public, previous, history) if t is not None]
    if not all(bool(torch.isfinite(t).all()) for t in tensors):
        raise BadUpdates("non-finite values in the updates or the references")

    flags = torch.zeros(n, dtype=torch.long)
    source = torch.full((n,), -1, dtype=torch.long)
    idx = torch.arange(n)
    if rank is None:
        order = idx
    else:
        order = torch.as_tensor(rank, dtype=torch.long)
        if order.shape != (n,) or not torch.equal(torch.sort(order).values, idx):
            raise BadUpdates(f"rank must be a permutation of 0..{n - 1}")

    def mark(mask: torch.Tensor, flag: Flag, src: torch.Tensor | None = None) -> None:
        new = mask & (flags == 0)
        flags[new] = int(flag)
        if src is not None:
            source[new] = src[new]

    # ZERO
    norms = u.norm(dim=1)
    mark(norms <= cfg.zero * norms.median(), Flag.ZERO)
    live = flags == 0
    enough = int(live.sum()) >= cfg.min_rows

    # the live rows' mean; every row's centred component orthogonal to it
    def centred(x: torch.Tensor, mean: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
        m_hat = _unit(mean) if float(mean.norm()) > 0 else torch.zeros_like(mean)
        e = x - mean
        f = e - (e @ m_hat)[:, None] * m_hat[None]
        spread = (f * f).sum(1)
        scale = float(spread[live].median()) if enough else 0.0
        return m_hat, f, scale

    m = u[live].mean(0) if bool(live.any()) else torch.zeros(d, dtype=torch.float64)
    m_hat, f, scale = centred(u, m)
    spread_ok = enough and scale > 0
    unit = _unit(u)

    def against(ref: torch.Tensor, hat: torch.Tensor, space: torch.Tensor, sc: float, thr: float) -> tuple:
        """(stat [n, r], hit [n, r]) of the rows (``space``) against raw references ``ref``."""
        proj = ref - (ref @ hat)[:, None] * hat[None]
        return _similar(space, proj, sc, thr, cfg.consensus_residual)

    # PUBLIC
    public_ratio = _nan(n)
    if public is not None:
        p = public.double()[None]
        hit = (1.0 - (unit @ _unit(p).T)[:, 0] ** 2 <= cfg.exact) & (norms > 0)
        if spread_ok:
            stat, near = against(p - m, m_hat, f, scale, cfg.public)
            public_ratio, hit = stat[:, 0], hit | near[:, 0]
        mark(hit, Flag.PUBLIC)

    # STALE_GLOBAL
    stale_ratio = _nan(n)
    if previous is not None and float(previous.norm()) > 0:
        g = previous.double()[None]
        hit = (1.0 - (unit @ _unit(g).T)[:, 0] ** 2 <= cfg.exact) & (norms > 0)
        if spread_ok:
            stat, near = against(g, m_hat, f, scale, cfg.copy)
            stale_ratio, hit = stat[:, 0], hit | near[:, 0]
        mark(hit, Flag.STALE_GLOBAL)

    # REPLAY: the sketch points the same way as an earlier round's (exact or scaled re-send)
    sketches = count_sketch(u)
    replay_ratio = _nan(n)
    if history is not None and history.shape[0] > 0:
        gap = 1.0 - _unit(sketches) @ _unit(history.double()).T  # [n, h]
        replay_ratio = gap.amin(1)
        hit = (gap <= cfg.replay) & (norms > 0)[:, None]
        mark(hit.any(1), Flag.REPLAY, hit.to(torch.int8).argmax(1))

    # COPY (of an earlier row of this round)
    earlier = order[None] < order[:, None]  # [i, j]: j committed before i
    link = (1.0 - (unit @ unit.T) ** 2 <= cfg.exact) & (norms > 0)[:, None] & (norms > 0)[None]
    copy_ratio = _nan(n)
    if spread_ok:
        stat, near = _similar(f, f, scale, cfg.copy, cfg.consensus_residual)
        link |= near & live[:, None] & live[None]
        copy_ratio = torch.where(earlier, stat, float("inf")).amin(1)
        copy_ratio[int(order.argmin())] = float("nan")
    # only to an earlier row not flagged so far: an early replay of a provider's older update must
    # not turn that provider's fresh update (same data, same fingerprint) into its "copy"
    link &= earlier & (flags == 0)[None]
    roots = _roots(link, order)
    mark(roots != idx, Flag.COPY, roots)

    # CONSENSUS (ALIE-like), among the rows not flagged so far
    residual, align = _nan(n), _nan(n)
    rest = flags == 0
    if int(rest.sum()) >= cfg.min_rows:
        ur = u[rest]
        er = ur - ur.mean(0)
        sq = (er * er).sum(1)
        med = float(sq.median())
        sd = ur.std(0)
        if med > 0:
            residual[rest] = sq / med
            align[rest] = _unit(er) @ _unit(sd) if float(sd.norm()) > 0 else torch.zeros(len(sq))
            odd = (residual < cfg.consensus_residual) | (align.abs() >= cfg.consensus_align)
            mark(rest & odd, Flag.CONSENSUS)
    return NoveltyResult(
        flags, source, sketches, copy_ratio, public_ratio, stale_ratio, replay_ratio, residual, align
    )
