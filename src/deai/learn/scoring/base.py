"""The scoring base: one round's updates, the coalition game over them, and what a scorer returns.

A round is the global parameter vector ``base`` (``[d]``), the providers' updates (``[n, d]``, in
the order they were committed) and optional aggregation weights (``[n]``, e.g. sample counts).
The value of a coalition ``S`` is the utility (:class:`~deai.learn.scoring.utility.ValidationUtility`)
of ``base + mean_w(S)``: the model the round would produce from ``S``'s updates alone, aggregated
by the weighted mean (FedAvg); the empty coalition is ``base`` itself. Scorers only ever combine
the round's updates -- nothing is retrained.

**Players and duplicates.** Before scoring, updates that are near copies of an earlier update
(cosine similarity >= ``dedup``, :func:`~deai.learn.scoring.groups.duplicate_groups`) are merged
into one player: its update is the members' mean and its weight the heaviest member's, so k
copies of one dataset count as one contribution in every coalition. The player's value goes to
the member that committed first (``share="first"``) or is split equally (``share="equal"``); either
way a group never earns more than one identity would. Zero updates stay single players.

**Update lengths (``lengths``, default ``"equal"``).** After merging, every player's nonzero
update is rescaled to the median norm ``r`` of the players' nonzero updates, direction kept, before
any coalition is valued: for LOO, GTG-Shapley and RONI alike, since they all value coalitions
through :meth:`Game.value`. The game then pays for where an update points, not for how long it is.
Without it the game credits length: the value of ``base + mean(S)`` grows with a longer step in a
roughly right direction while the model is under-trained, so 5 of 20 providers sending their own
honest updates times 2 (or 10) were each paid 5x (or 159x) the median honest provider under
GTG-Shapley (digits, 10 rounds), and providers with noisy features (longer updates) were ranked
above clean ones in the first rounds. Why this rule:

- *rescale every row, not only clip the long ones* (``"clip"``, what a robust aggregator does to a
  row): a clip at the median still pays a shorter-than-median update for being sent longer, up to
  the median (measured on 10 IID providers: the shortest one, sent x2, rose from 6th to 1st under
  GTG-Shapley and 4x under LOO), so every provider's best reply is to send at least the median norm,
  and the clip's equilibrium is this rule anyway, with a model trained on inflated steps. Rescaling
  makes the game invariant to a row's own scale: a row sent ``s`` times longer is the same row.
  The only effect left is on ``r`` itself: a short row sent longer can move the median up by one
  order statistic (``k`` colluding rows by ``k``), which lengthens *every* player's row by the same
  factor (about 1-2% among IID providers) and so leaves the ranking and, to first order, the
  shares of the payout unchanged.
- *the norm, not the distance from the mean*: clipping ``s u = s (m + e)`` around the round's mean
  ``m`` gives ``m + r (s u - m) / |s u - m|``, which for large ``s`` still points along ``m``: the
  length bought along the common direction, the part that pays, is kept.
- *the median*: the common length must not be set by the rows it bounds; the median moves by at
  most one order statistic per row, whatever that row's length.
- *what it costs*: length that honestly comes from more local data (more local steps) is no longer
  paid; a larger share is still paid through a better direction. On digits (20 providers, 10
  rounds) the rank correlation of score with sample count is 0.88-0.92 (0.98-0.99 raw, 0.93-0.94
  clipped), with feature-noise level 0.95-0.97 (0.86-0.91 raw), label noise unchanged (0.93-0.94).
  Length cannot be told apart from scaling, so it cannot be paid without paying for scaling.
  Measured in ``docs/results/incentives.md``.

``"clip"`` (rows longer than ``r`` scaled down to it) and ``"raw"`` (unbounded, length credited)
remain as scorer options. Zero rows stay zero and are not counted in the median. Deterministic and
vectorized: one norm per player, a median, one multiply.

A :class:`Scorer` returns a :class:`ScoreResult` whose ``scores[i]`` is provider ``i``'s value in
utility units (positive = helpful). Scorers are deterministic given ``seed``: the same inputs and
seed give the same bits on the same machine and thread count.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from deai.core.registry import Registry
from deai.learn.errors import BadUpdates, UnknownName
from deai.learn.scoring.groups import duplicate_groups
from deai.learn.scoring.novelty import NoveltyResult
from deai.learn.scoring.utility import ValidationUtility

__all__ = [
    "LENGTHS",
    "SCORERS",
    "Game",
    "RoundUpdates",
    "ScoreResult",
    "Scorer",
    "bound_lengths",
    "coalition_params",
]


@dataclass(frozen=True)
class RoundUpdates:
    """One round: global vector ``base`` [d], ``updates`` [n, d], optional ``weights`` [n]."""

    base: torch.Tensor
    updates: torch.Tensor
    weights: torch.Tensor | None = None

    def __post_init__(self) -> None:
        b, u, w = self.base, self.updates, self.weights
        if not isinstance(u, torch.Tensor) or u.dim() != 2 or u.shape[0] < 1 or not u.is_floating_point():
            raise BadUpdates(
                f"updates must be a float [n, d] tensor with n >= 1, got {getattr(u, 'shape', u)}"
            )
        if not isinstance(b, torch.Tensor) or b.shape != (u.shape[1],) or not b.is_floating_point():
            raise BadUpdates(f"base must be a float vector of {u.shape[1]} entries")
        if not bool(torch.isfinite(u).all()) or not bool(torch.isfinite(b).all()):
            bad = (~torch.isfinite(u)).any(1).nonzero().flatten().tolist()
            raise BadUpdates(f"non-finite values in the base or in update rows {bad[:10]}")
        if w is not None:
            if not isinstance(w, torch.Tensor) or w.shape != (u.shape[0],):
                raise BadUpdates(f"weights must have shape ({u.shape[0]},)")
            if not bool(torch.isfinite(w).all()) or bool((w <= 0).any()):
                raise BadUpdates("weights must be finite and positive")

    @property
    def n(self) -> int:
        return int(self.updates.shape[0])


def coalition_params(
    base: torch.Tensor, updates: torch.Tensor, weights: torch.Tensor, masks: torch.Tensor
) -> torch.Tensor:
    """``[m, d]`` parameter vectors ``base + weighted mean of the masked updates`` (``masks`` [m, n]);
    an empty coalition gives ``base``."""
    mw = masks.to(updates.dtype) * weights.to(updates.dtype)
    total = mw.sum(1, keepdim=True)
    mean = (mw @ updates) / total.clamp_min(torch.finfo(updates.dtype).tiny)
    return base + mean


LENGTHS = ("equal", "clip", "raw")
"""How the game bounds update lengths (:func:`bound_lengths`): ``"equal"`` (the default),
``"clip"`` or ``"raw"``."""


def bound_lengths(updates: torch.Tensor, lengths: str) -> tuple[torch.Tensor, float | None]:
    """``updates`` ([m, d]) with their lengths bounded by the median norm ``r`` of the nonzero rows,
    and ``r`` (None for ``"raw"`` or when every row is zero). ``"equal"``: every nonzero row is
    rescaled to norm ``r``; ``"clip"``: rows longer than ``r`` are scaled down to it, shorter ones
    kept; ``"raw"``: unchanged. Directions are kept; zero rows stay zero and are not counted."""
    if lengths not in LENGTHS:
        raise ValueError(f"lengths must be one of {LENGTHS}, got {lengths!r}")
    norms = updates.double().norm(dim=1)
    nonzero = norms[norms > 0]
    if lengths == "raw" or nonzero.numel() == 0:
        return updates, None
    radius = float(nonzero.median())
    factor = torch.where(norms > 0, radius / norms.clamp_min(torch.finfo(torch.float64).tiny), 1.0)
    if lengths == "clip":
        factor = factor.clamp(max=1.0)
    return updates * factor.to(updates.dtype)[:, None], radius


@dataclass
class Game:
    """The coalition game over the round's *players* (distinct contributions after dedup)."""

    round: RoundUpdates
    utility: ValidationUtility
    leader: torch.Tensor  # [n] long: the player (first member) each provider belongs to
    players: list[int]  # provider index of each player's first member, in commit order
    updates: torch.Tensor  # [m, d] one row per player
    weights: torch.Tensor  # [m]

    active: torch.Tensor | None = None  # [n] bool: providers in the game (None: all)
    radius: float | None = None  # the median norm the lengths were bounded by (None: raw)

    @classmethod
    def build(
        cls,
        rnd: RoundUpdates,
        utility: ValidationUtility,
        dedup: float | None,
        novelty: NoveltyResult | None = None,
        lengths: str = "raw",
    ) -> Game:
        """The game; with ``novelty`` its copy groups replace ``dedup`` and flagged providers
        (and copies of them) are left out; ``lengths`` bounds the players' update lengths
        (:func:`bound_lengths`)."""
        n = rnd.n
        weights = rnd.weights if rnd.weights is not None else torch.ones(n, dtype=rnd.updates.dtype)
        weights = weights.to(rnd.updates.dtype)
        active = None
        if novelty is not None:
            if novelty.flags.shape != (n,):
                raise BadUpdates(f"novelty flags for {novelty.flags.shape[0]} providers, round has {n}")
            leader, active = novelty.leader(), novelty.active()
        else:
            leader = duplicate_groups(rnd.updates, dedup) if dedup is not None else torch.arange(n)
        keep = leader if active is None else leader[active]
        players = sorted(set(keep.tolist()))
        member = (leader[None, :] == torch.tensor(players, dtype=torch.long)[:, None]).to(rnd.updates.dtype)
        if active is not None:
            member = member * active.to(member.dtype)[None]
        updates = (member @ rnd.updates) / member.sum(1, keepdim=True).clamp_min(1.0)
        pw = (member * weights).amax(1) if players else weights[:0]
        updates, radius = bound_lengths(updates, lengths) if players else (updates, None)
        return cls(rnd, utility, leader, players, updates, pw, active, radius)

    @property
    def m(self) -> int:
        return len(self.players)

    def value(self, masks: torch.Tensor) -> torch.Tensor:
        """Utilities (float64 [k]) of the coalitions ``masks`` ([k, m] over players)."""
        if masks.shape[0] == 0:
            return torch.zeros(0, dtype=torch.float64)
        params = coalition_params(self.round.base, self.updates, self.weights, masks)
        return self.utility(params).double()

    def to_providers(self, player_values: torch.Tensor, share: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Provider scores from player values, and ``duplicate_of`` (-1 for a group's first member)."""
        n = self.round.n
        scores = torch.zeros(n, dtype=torch.float64)
        dup = torch.where(self.leader != torch.arange(n), self.leader, -1)
        live = self.active if self.active is not None else torch.ones(n, dtype=torch.bool)
        for p, first in enumerate(self.players):
            members = ((self.leader == first) & live).nonzero().flatten()
            if share == "equal":
                scores[members] = player_values[p] / len(members)
            else:
                scores[first] = player_values[p]
            dup[members[members != first]] = first
        return scores, dup


@dataclass
class ScoreResult:
    """Per-provider ``scores`` (float64 [n], utility units), ``duplicate_of`` ([n], -1 if none),
    the number of candidate models evaluated, and method-specific ``info``."""

    method: str
    scores: torch.Tensor
    duplicate_of: torch.Tensor
    evaluations: int
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def rewarded(self) -> torch.Tensor:
        """Bool [n]: providers with a positive score (only these earn anything in settlement)."""
        return self.scores > 0

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "scores": [float(s) for s in self.scores],
            "duplicate_of": [int(d) for d in self.duplicate_of],
            "evaluations": self.evaluations,
            "info": self.info,
        }


class Scorer(ABC):
    """Scores one round. ``dedup`` is the cosine threshold for merging copies (None: off);
    ``share`` how a merged group's value is paid (``"first"`` or ``"equal"``); ``lengths`` how the
    players' update lengths are bounded before any coalition is valued (``"equal"``, the default
    and what the network's score job uses: every update rescaled to the players' median norm;
    ``"clip"``: only longer ones scaled down; ``"raw"``: unbounded, length is credited -- see the
    module docstring)."""

    name: ClassVar[str] = "scorer"

    def __init__(self, *, dedup: float | None = 0.95, share: str = "first", lengths: str = "equal") -> None:
        if dedup is not None and not 0.0 < dedup <= 1.0:
            raise ValueError(f"{self.name}: dedup must lie in (0, 1] or be None, got {dedup}")
        if share not in ("first", "equal"):
            raise ValueError(f"{self.name}: share must be 'first' or 'equal', got {share!r}")
        if lengths not in LENGTHS:
            raise ValueError(f"{self.name}: lengths must be one of {LENGTHS}, got {lengths!r}")
        self.dedup, self.share, self.lengths = dedup, share, lengths

    def __call__(
        self,
        rnd: RoundUpdates,
        utility: ValidationUtility,
        *,
        seed: int = 0,
        novelty: NoveltyResult | None = None,
    ) -> ScoreResult:
        """Score ``rnd``. With ``novelty`` (:func:`~deai.learn.scoring.novelty.check_updates` of the
        same updates), flagged providers score 0 and are not players (they neither earn nor change
        the others' values), and copies merge by its groups instead of ``dedup``."""
        game = Game.build(rnd, utility, self.dedup, novelty, self.lengths)
        start = utility.evaluations
        values, info = torch.zeros(0, dtype=torch.float64), dict[str, Any]()
        if game.m > 0:
            values, info = self.player_values(game, torch.Generator().manual_seed(seed))
        scores, dup = game.to_providers(values, self.share)
        info = {"players": game.m, "length_radius": game.radius, **info}
        return ScoreResult(self.name, scores, dup, utility.evaluations - start, info)

    @abstractmethod
    def player_values(self, game: Game, generator: torch.Generator) -> tuple[torch.Tensor, dict[str, Any]]:
        """Values (float64 [m]) of the game's players and diagnostics."""

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


SCORERS: Registry[Scorer] = Registry("scorer", UnknownName, stamp="name")
"""Every contribution scorer; the decorator sets ``cls.name``."""
