"""Errors of the compression package; all subclass :class:`deai.learn.errors.LearnError`."""

from deai.learn.errors import LearnError

__all__ = ["BadCompressed", "BadCompressionSpec", "CompressionError"]


class CompressionError(LearnError, ValueError):
    """Base class of the compression package's errors."""


class BadCompressionSpec(CompressionError):
    """A compressor spec cannot be built: bad arguments, stages in the wrong order or repeated."""


class BadCompressed(CompressionError):
    """A compressed update (a foreign input) is malformed: wrong keys, dtypes or shapes, a header
    that does not match the spec, indices out of range or not strictly increasing, codes out of
    range, non-finite or unbounded scales or values. Also raised when an update to compress holds
    NaN or infinity, or a value too large for the scheme's scale dtype."""
