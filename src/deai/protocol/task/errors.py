"""The exceptions of the federated task lifecycle; each names one way an input can be wrong."""

from deai.core.errors import DeaiError

__all__ = [
    "BadStatement",
    "BadTaskSpec",
    "BadUpdate",
    "TaskError",
    "UnknownTaskId",
    "WrongPhase",
]


class TaskError(DeaiError):
    """Base class of the task-lifecycle errors."""


class BadTaskSpec(TaskError, ValueError):
    """A task spec is malformed: unknown field, bad value, or it does not hash to the task id."""


class UnknownTaskId(TaskError, KeyError):
    """No task with that id is coordinated here."""


class WrongPhase(TaskError):
    """A message arrived for another round or phase than the task is in."""


class BadStatement(TaskError, ValueError):
    """A signed statement (update or secure-aggregation message) is malformed or wrongly signed."""


class BadUpdate(TaskError, ValueError):
    """An update blob is missing, oversized, not safetensors, of the wrong layout or not finite."""
