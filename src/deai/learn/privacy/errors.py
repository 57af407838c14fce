"""Errors of the privacy package."""

from deai.core.errors import DeaiError

__all__ = ["BudgetExceeded", "PrivacyError"]


class PrivacyError(DeaiError, ValueError):
    """A privacy mechanism was given an input it cannot protect (wrong shape, non-finite, bad parameter)."""


class BudgetExceeded(PrivacyError):
    """Another round would spend more than the task's (epsilon, delta) budget."""
