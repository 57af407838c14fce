"""Contribution scoring: how much each provider's update adds to a round, on validation data.

``get_scorer(name, **kwargs)`` builds one of:

- ``"loo"``: leave-one-out (:class:`LeaveOneOut`), ``m + 1`` evaluations;
- ``"gtg_shapley"``: GTG-Shapley Monte Carlo with truncation (:class:`GTGShapley`), at most
  ``max_permutations * m`` evaluations;
- ``"roni"``: reject on negative impact (:class:`RONI`), ``2 * references * m`` evaluations.

Usage::

    utility = ValidationUtility(model, val_data)             # metric="neg_loss" by default
    result = get_scorer("gtg_shapley")(RoundUpdates(global_vec, deltas, weights), utility, seed=7)
    result.scores, result.duplicate_of, result.evaluations

Every scorer values coalitions of the players' updates rescaled to their median norm (option
``lengths``: ``"equal"`` by default, ``"clip"`` or ``"raw"``; :mod:`deai.learn.scoring.base`), so
an update sent longer than it was trained earns nothing more.

Novelty checks (:func:`check_updates`, :mod:`deai.learn.scoring.novelty`) flag zero updates,
copies, replays, re-sent global updates, public-data trainers and ALIE-like consensus updates
(:class:`Flag`); passed as ``novelty=`` to a scorer, flagged providers score 0 and copies merge
into the first committer's player. Without it, every scorer merges near-duplicate updates into one
player first (``dedup``, see
:mod:`deai.learn.scoring.base`) and is deterministic given ``seed``. See ``docs/incentives.md``.
A new scorer subclasses :class:`Scorer` and is declared with ``@SCORERS.register("name")``.
"""

from __future__ import annotations

from deai.learn.scoring.base import SCORERS, RoundUpdates, Scorer, ScoreResult
from deai.learn.scoring.gtg_shapley import GTGShapley
from deai.learn.scoring.loo import LeaveOneOut
from deai.learn.scoring.novelty import Flag, NoveltyConfig, NoveltyResult, check_updates
from deai.learn.scoring.roni import RONI
from deai.learn.scoring.sketch import HISTORY_WINDOW, SKETCH_DIM, count_sketch
from deai.learn.scoring.utility import METRICS, ValidationUtility

__all__ = [
    "HISTORY_WINDOW",
    "METRICS",
    "RONI",
    "SCORERS",
    "SKETCH_DIM",
    "Flag",
    "GTGShapley",
    "LeaveOneOut",
    "NoveltyConfig",
    "NoveltyResult",
    "RoundUpdates",
    "ScoreResult",
    "Scorer",
    "ValidationUtility",
    "check_updates",
    "count_sketch",
    "get_scorer",
]


def get_scorer(name: str, **kwargs) -> Scorer:
    """Build a registered scorer by name (``loo``, ``gtg_shapley``, ``roni``)."""
    return SCORERS.get(name)(**kwargs)
