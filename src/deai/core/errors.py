"""The exceptions of the core layer.

Every input that comes from another party is checked before use; each way it can be wrong has
its own exception type, so callers (and HTTP handlers) can report exactly what was wrong.
"""

__all__ = [
    "BadSignature",
    "BlobCorrupted",
    "BlobNotFound",
    "BlobTooLarge",
    "BodyTooLarge",
    "DeaiError",
    "EncodingError",
    "EnvelopeError",
    "MalformedEnvelope",
    "ReplayedNonce",
    "SenderMismatch",
    "StaleTimestamp",
    "TensorError",
    "UnknownMessageType",
    "WrongNetwork",
]


class DeaiError(Exception):
    """Base class of every error deai raises on purpose."""


class EncodingError(DeaiError, ValueError):
    """A value cannot be put in canonical form (NaN, a float key, an integer beyond 2**53, ...)."""


class EnvelopeError(DeaiError):
    """A signed envelope failed verification. Subclasses name the reason."""


class MalformedEnvelope(EnvelopeError):
    """The envelope is not well formed: a field is missing, of the wrong type or wrong length."""


class BadSignature(EnvelopeError):
    """The signature does not verify over the envelope's canonical bytes."""


class SenderMismatch(EnvelopeError):
    """The signature is valid but was made by a key other than the claimed sender."""


class WrongNetwork(EnvelopeError):
    """The envelope is meant for another network (its network id differs)."""


class StaleTimestamp(EnvelopeError):
    """The envelope's timestamp lies outside the accepted window around the receiver's clock."""


class ReplayedNonce(EnvelopeError):
    """The (sender, nonce) pair was seen before."""


class BodyTooLarge(EnvelopeError):
    """The envelope's encoded body exceeds the receiver's size limit."""


class UnknownMessageType(EnvelopeError):
    """The message type is not one the receiver accepts."""


class BlobNotFound(DeaiError, KeyError):
    """No blob with this digest is in the store."""


class BlobCorrupted(DeaiError):
    """A stored blob's bytes no longer hash to its address; it is quarantined and never served."""


class BlobTooLarge(DeaiError):
    """A blob exceeds the store's size limit."""


class TensorError(DeaiError, ValueError):
    """Tensor bytes or a flat vector do not match what was expected (shape, dtype, size, finiteness)."""
