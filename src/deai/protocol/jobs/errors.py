"""The exceptions of verified jobs; each names one way a party's input can be wrong.

All subclass :class:`JobError` (a :class:`deai.core.errors.DeaiError`), so a coordinator can refuse
one executor's bad message, record it as a fault and still resolve the job.
"""

from deai.core.errors import DeaiError

__all__ = [
    "BadJobSpec",
    "BadOutput",
    "CommitmentMismatch",
    "DeadlinePassed",
    "DisputeError",
    "InputMismatch",
    "JobError",
    "ReplicationMismatch",
    "StakeTooLow",
    "UnknownJobKind",
    "UploadMismatch",
]


class JobError(DeaiError):
    """Base class of the verified-job errors."""


class BadJobSpec(JobError, ValueError):
    """A job spec is malformed (unknown field, bad digest, bad parameter, non-canonical value)."""


class UnknownJobKind(BadJobSpec):
    """The job names a kind that is not in the registry."""


class InputMismatch(JobError, ValueError):
    """A job input has the wrong tensors, shapes, dtypes or count for its kind."""


class BadOutput(JobError, ValueError):
    """An uploaded output is not valid safetensors, has the wrong names/shape/dtype, or holds NaN/inf."""


class CommitmentMismatch(JobError):
    """A reveal does not hash to the executor's earlier commitment."""


class UploadMismatch(JobError):
    """An uploaded output is missing or its bytes do not hash to the revealed digest."""


class DeadlinePassed(JobError):
    """A commitment or reveal arrived after its deadline."""


class ReplicationMismatch(JobError):
    """The creator's revealed replication choice does not match its registration commitment."""


class StakeTooLow(JobError, ValueError):
    """An executor's stake is below the break-even minimum for the job's fee."""


class DisputeError(JobError):
    """A move in a refereed-delegation dispute is invalid (bad proof, wrong index, out of turn)."""
