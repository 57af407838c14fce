"""Reject on negative impact (RONI, Nelson et al. 2008), on the round's updates.

For each player ``i`` draw ``references`` random coalitions ``S`` of the other players (each of
``size`` players; default half of them), and measure the impact of adding ``i``:
``impact_i = mean_S [U(base + mean(S + i)) - U(base + mean(S))]``. A player whose impact is below
``-tolerance`` is rejected (``info["rejected"]`` lists the providers); its value is its impact, and
settlement pays nothing for a value <= 0. Averaging over several reference sets makes the test
robust to one unrepresentative reference, the point of the original RONI calibration.

Cost: ``2 * references * m`` candidate evaluations, batched in one call; linear in providers.
"""

from __future__ import annotations

from typing import Any

import torch

from deai.learn.scoring.base import SCORERS, Game, Scorer

__all__ = ["RONI"]


@SCORERS.register("roni")
class RONI(Scorer):
    def __init__(
        self, *, references: int = 4, size: int | None = None, tolerance: float = 0.0, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        if references < 1 or (size is not None and size < 0) or tolerance < 0:
            raise ValueError("roni: references >= 1, size >= 0 and tolerance >= 0 are required")
        self.references, self.size, self.tolerance = references, size, tolerance

    def player_values(self, game: Game, generator: torch.Generator) -> tuple[torch.Tensor, dict[str, Any]]:
        m, r = game.m, self.references
        size = min(m - 1, self.size if self.size is not None else max(1, (m - 1) // 2))
        # For player i: random scores over the others, keep the `size` lowest -> a uniform subset.
        keys = torch.rand(m, r, m, generator=generator)
        keys[torch.arange(m), :, torch.arange(m)] = float("inf")  # never pick i itself
        order = keys.argsort(dim=2)
        without = torch.zeros(m, r, m)
        without.scatter_(2, order[:, :, :size], 1.0)
        with_i = without.clone()
        with_i[torch.arange(m), :, torch.arange(m)] = 1.0
        masks = torch.cat([without.reshape(m * r, m), with_i.reshape(m * r, m)])
        u = game.value(masks)
        impact = (u[m * r :] - u[: m * r]).view(m, r).mean(1)
        rejected = (impact < -self.tolerance).nonzero().flatten()
        players = [game.players[int(p)] for p in rejected]
        return impact, {"reference_size": size, "rejected": players}
