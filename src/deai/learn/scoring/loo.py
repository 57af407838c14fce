"""Leave-one-out: a player's value is what the round loses without it.

``value_i = U(base + mean(all)) - U(base + mean(all without i))``, over the round's players (see
:mod:`deai.learn.scoring.base`). Cost: ``m + 1`` candidate evaluations in one batched call, no
sampling. LOO is exact and cheap but under-rewards redundant data: two providers holding similar
data each look dispensable while the other is present (that is also why splitting one dataset
across identities does not pay under LOO).
"""

from __future__ import annotations

from typing import Any

import torch

from deai.learn.scoring.base import SCORERS, Game, Scorer

__all__ = ["LeaveOneOut"]


@SCORERS.register("loo")
class LeaveOneOut(Scorer):
    def player_values(self, game: Game, generator: torch.Generator) -> tuple[torch.Tensor, dict[str, Any]]:
        m = game.m
        masks = torch.cat([torch.ones(1, m), 1.0 - torch.eye(m)])  # all, then all-but-i
        u = game.value(masks)
        return u[0] - u[1:], {"u_all": float(u[0])}
