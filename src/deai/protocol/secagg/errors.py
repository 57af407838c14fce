"""Errors of a secure aggregation round.

Every message a party receives is checked; each way it can be wrong has its own type so the driver
can tell a refused message (the round goes on without it) from an aborted round (no sum at all).
A round never returns a wrong sum silently: it either completes correctly or raises.
"""

from deai.core.errors import DeaiError

__all__ = [
    "AuthenticationFailed",
    "DuplicateMessage",
    "ForgedShare",
    "InconsistentRequest",
    "MalformedMessage",
    "NonFiniteInput",
    "RoundAborted",
    "SecAggError",
    "UnexpectedMessage",
]


class SecAggError(DeaiError):
    """Base class of the secure aggregation errors."""


class MalformedMessage(SecAggError, ValueError):
    """A message has the wrong size, type, field count or an out-of-range index."""


class DuplicateMessage(SecAggError):
    """A party sent the same phase's message twice, or a list repeats an entry."""


class UnexpectedMessage(SecAggError):
    """A message arrived in the wrong phase, from a party not in the round, or after its deadline."""


class AuthenticationFailed(SecAggError):
    """A signature over public keys or over the survivor set does not verify."""


class ForgedShare(SecAggError):
    """A secret share fails its authentication tag or its dealer's commitment."""


class InconsistentRequest(SecAggError):
    """The server asked for something an honest client must refuse (e.g. both the self-mask share and
    the pairwise-key share of one provider, or a survivor set other than the one signed)."""


class NonFiniteInput(SecAggError, ValueError):
    """An update holds NaN or infinity; it cannot be quantized."""


class RoundAborted(SecAggError):
    """Too many providers dropped or a secret could not be recovered: the round yields no sum."""
