"""Errors of the incentive layer; all subclass :class:`deai.core.errors.DeaiError`."""

from deai.core.errors import DeaiError

__all__ = ["BadScores", "BadSplit", "IncentiveError", "SettlementError"]


class IncentiveError(DeaiError):
    """Base class of the incentive layer's errors."""


class BadSplit(IncentiveError, ValueError):
    """A split rule, budget, score or work figure is malformed."""


class BadScores(IncentiveError, ValueError):
    """Scores do not match the round (wrong length, non-finite, unknown provider)."""


class SettlementError(IncentiveError):
    """A settlement cannot be posted or claimed as asked (no payout, not in the allocation)."""
