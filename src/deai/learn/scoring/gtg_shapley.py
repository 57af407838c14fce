"""GTG-Shapley (Liu et al., 2022): Monte Carlo Shapley values over the round's updates.

A player's Shapley value is its marginal gain ``U(S + i) - U(S)`` averaged over the orders in
which players could join. GTG-Shapley estimates it without retraining (the coalition models are
``base + mean(S)``, :mod:`deai.learn.scoring.base`) and with two truncations:

- **between rounds**: if the whole round moves the utility by less than ``round_tolerance``
  (``|U(all) - U(none)|``), every value is 0 and nothing else is evaluated;
- **within a permutation**: once a prefix is within ``tolerance * |U(all) - U(none)|`` of the
  full round, the remaining players' marginal gains are taken as 0 (not evaluated).

Permutations are **guided**: in each block of ``block`` permutations, permutation ``k`` puts player
``(offset + k) mod m`` first and orders the rest at random, so every player is seen early (where
marginal gains are large) equally often. A block is evaluated position by position: at step ``j``
the still-running permutations' prefixes of length ``j`` are evaluated in one batched call.

**Sampling budget.** Each permutation gives one marginal sample per player, so the estimate's
error depends on the number of permutations ``K``, not on the number of players: the cost is at
most ``K * m + 2`` evaluations (linear in providers), and truncation cuts it further. ``K`` grows
in blocks from ``min_permutations`` until the largest change of any running estimate over a block
is below ``convergence * |U(all) - U(none)| / m``, or ``max_permutations`` is reached. The
defaults (``block=16``, ``8 <= K <= 64``) keep scoring of 20 providers under ~1,300 evaluations.
"""

from __future__ import annotations

from typing import Any

import torch

from deai.learn.scoring.base import SCORERS, Game, Scorer

__all__ = ["GTGShapley"]


@SCORERS.register("gtg_shapley")
class GTGShapley(Scorer):
    def __init__(
        self,
        *,
        max_permutations: int = 64,
        min_permutations: int = 16,
        block: int = 16,
        tolerance: float = 0.01,
        round_tolerance: float = 1e-6,
        convergence: float = 0.05,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not 1 <= min_permutations <= max_permutations or block < 1:
            raise ValueError("gtg_shapley: need 1 <= min_permutations <= max_permutations and block >= 1")
        if tolerance < 0 or round_tolerance < 0 or convergence < 0:
            raise ValueError("gtg_shapley: tolerances must be >= 0")
        self.max_permutations, self.min_permutations, self.block = max_permutations, min_permutations, block
        self.tolerance, self.round_tolerance, self.convergence = tolerance, round_tolerance, convergence

    def _permutations(self, m: int, k: int, offset: int, generator: torch.Generator) -> torch.Tensor:
        """``k`` guided permutations of ``m`` players: row ``r`` starts with ``(offset + r) % m``."""
        first = (torch.arange(k) + offset) % m
        keys = torch.rand(k, m, generator=generator)
        keys[torch.arange(k), first] = -1.0  # sorts first
        return keys.argsort(dim=1)

    def _block(
        self, game: Game, perms: torch.Tensor, u_none: float, u_all: float
    ) -> tuple[torch.Tensor, int]:
        """Marginal gains [k, m] (indexed by player) of one block, and how many prefixes were evaluated."""
        k, m = perms.shape
        marg = torch.zeros(k, m, dtype=torch.float64)
        prev = torch.full((k,), u_none, dtype=torch.float64)
        masks = torch.zeros(k, m)
        running = torch.ones(k, dtype=torch.bool)
        cut = self.tolerance * abs(u_all - u_none)
        rows = torch.arange(k)
        evaluated = 0
        for j in range(m):
            running &= (u_all - prev).abs() >= cut
            if not bool(running.any()):
                break
            masks[rows, perms[:, j]] = 1.0
            live = running.nonzero().flatten()
            if j == m - 1:
                u = torch.full((len(live),), u_all, dtype=torch.float64)  # the full set is known
            else:
                u = game.value(masks[live])
                evaluated += len(live)
            marg[live, perms[live, j]] = u - prev[live]
            prev[live] = u
        return marg, evaluated

    def player_values(self, game: Game, generator: torch.Generator) -> tuple[torch.Tensor, dict[str, Any]]:
        m = game.m
        ends = game.value(torch.stack([torch.zeros(m), torch.ones(m)]))
        u_none, u_all = float(ends[0]), float(ends[1])
        info: dict[str, Any] = {"u_none": u_none, "u_all": u_all}
        if abs(u_all - u_none) < self.round_tolerance:
            return torch.zeros(m, dtype=torch.float64), {**info, "permutations": 0, "truncated_round": True}
        total = torch.zeros(m, dtype=torch.float64)
        done, prefixes, offset = 0, 0, 0
        threshold = self.convergence * abs(u_all - u_none) / m
        while done < self.max_permutations:
            k = min(self.block, self.max_permutations - done)
            perms = self._permutations(m, k, offset, generator)
            marg, evaluated = self._block(game, perms, u_none, u_all)
            before = total / done if done else None
            total += marg.sum(0)
            done, prefixes, offset = done + k, prefixes + evaluated, (offset + k) % m
            settled = before is not None and float((total / done - before).abs().max()) < threshold
            if settled and done >= self.min_permutations:
                break
        return total / done, {**info, "permutations": done, "prefixes": prefixes, "truncated_round": False}
