"""The exceptions of the learning layer; all subclass :class:`deai.core.errors.DeaiError`."""

from deai.core.errors import DeaiError

__all__ = [
    "AggregationError",
    "AssumptionViolated",
    "BadUpdates",
    "DataError",
    "LearnError",
    "MissingData",
    "ModelError",
    "UnknownName",
]


class LearnError(DeaiError):
    """Base class of the learning layer's errors."""


class UnknownName(LearnError, ValueError):
    """A registry lookup (dataset, partitioner, model, strategy, aggregator, attack) found no such name."""


class DataError(LearnError, ValueError):
    """A dataset cannot be loaded or split as asked (missing file, bad label column, too few samples)."""


class MissingData(DataError):
    """A dataset or corpus that deai knows is not installed on this machine; the message says how to
    install it (an ``apt-get`` or ``pip`` command) or where to put the files."""


class ModelError(LearnError, ValueError):
    """A model cannot be built (bad import path, wrong arguments)."""


class AggregationError(LearnError, ValueError):
    """An aggregation cannot run. Subclasses name the reason."""


class BadUpdates(AggregationError):
    """The stacked updates are malformed: wrong rank, wrong width, non-finite values, bad weights."""


class AssumptionViolated(AggregationError):
    """The aggregator's robustness assumption (e.g. ``2f < n``) does not hold for these inputs."""
