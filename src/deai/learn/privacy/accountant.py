"""Privacy accounting for the subsampled Gaussian mechanism, through Opacus's accountants.

Each round (or DP-SGD step) applies Gaussian noise of ``noise_multiplier`` times the clip bound to a
sum over a Poisson-sampled subset of participants (rate ``sample_rate``). :class:`PrivacyAccountant`
records every round and reports the cumulative (epsilon, delta) after it, computed by Opacus's
RDP accountant (default; tight enough and fast) or its PRV accountant (tighter, slower). The figures
are Opacus's own: we only keep the history and refuse invalid parameters.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from opacus.accountants import create_accountant
from opacus.accountants.utils import get_noise_multiplier

from deai.learn.privacy.errors import BudgetExceeded, PrivacyError

__all__ = ["MECHANISMS", "PrivacyAccountant", "PrivacyReport", "noise_multiplier_for"]

MECHANISMS = ("rdp", "prv")


@dataclass(frozen=True)
class PrivacyReport:
    """The cumulative guarantee after ``round`` rounds."""

    round: int
    epsilon: float
    delta: float
    noise_multiplier: float
    sample_rate: float

    def to_dict(self) -> dict:
        return asdict(self)


def _check(noise_multiplier: float, sample_rate: float) -> None:
    if not (math.isfinite(noise_multiplier) and noise_multiplier > 0):
        raise PrivacyError(f"noise multiplier must be positive and finite, got {noise_multiplier}")
    if not 0 < sample_rate <= 1:
        raise PrivacyError(f"sample rate must be in (0, 1], got {sample_rate}")


class PrivacyAccountant:
    """Cumulative (epsilon, delta) of a sequence of subsampled Gaussian rounds.

    ``budget``: an optional epsilon cap; :meth:`check_budget` raises :class:`BudgetExceeded` before a
    round that would pass it.
    """

    def __init__(self, delta: float, mechanism: str = "rdp", budget: float | None = None) -> None:
        if mechanism not in MECHANISMS:
            raise PrivacyError(f"unknown accountant {mechanism!r}; known: {', '.join(MECHANISMS)}")
        if not 0 < delta < 1:
            raise PrivacyError(f"delta must be in (0, 1), got {delta}")
        self.delta, self.mechanism, self.budget = delta, mechanism, budget
        self._acc = create_accountant(mechanism)
        self.history: list[PrivacyReport] = []

    @property
    def rounds(self) -> int:
        return len(self.history)

    @property
    def epsilon(self) -> float:
        """Epsilon spent so far (0 before the first round)."""
        return self.history[-1].epsilon if self.history else 0.0

    def _epsilon(self, acc) -> float:
        return float(acc.get_epsilon(delta=self.delta))

    def step(self, noise_multiplier: float, sample_rate: float, steps: int = 1) -> PrivacyReport:
        """Record ``steps`` rounds with these parameters and return the cumulative guarantee."""
        _check(noise_multiplier, sample_rate)
        for _ in range(steps):
            self._acc.step(noise_multiplier=noise_multiplier, sample_rate=sample_rate)
        report = PrivacyReport(
            self.rounds + steps, self._epsilon(self._acc), self.delta, noise_multiplier, sample_rate
        )
        self.history.append(report)
        return report

    def check_budget(self, noise_multiplier: float, sample_rate: float) -> float:
        """The epsilon one more such round would reach; raises if it exceeds the budget."""
        _check(noise_multiplier, sample_rate)
        trial = create_accountant(self.mechanism)
        trial.history = [*self._acc.history, (noise_multiplier, sample_rate, 1)]
        eps = self._epsilon(trial)
        if self.budget is not None and eps > self.budget:
            raise BudgetExceeded(f"one more round would reach epsilon {eps:.3f} > budget {self.budget}")
        return eps


def noise_multiplier_for(
    target_epsilon: float, delta: float, sample_rate: float, steps: int, mechanism: str = "rdp"
) -> float:
    """The smallest noise multiplier (to Opacus's search tolerance) that keeps ``steps`` rounds at
    ``sample_rate`` within (target_epsilon, delta)."""
    if mechanism not in MECHANISMS:
        raise PrivacyError(f"unknown accountant {mechanism!r}")
    _check(1.0, sample_rate)
    return float(
        get_noise_multiplier(
            target_epsilon=target_epsilon,
            target_delta=delta,
            sample_rate=sample_rate,
            steps=steps,
            accountant=mechanism,
        )
    )
