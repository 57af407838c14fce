"""The exceptions of verified LLM generation; all subclass :class:`deai.core.errors.DeaiError`."""

from deai.core.errors import DeaiError

__all__ = ["BadProof", "BadRequest", "LLMError"]


class LLMError(DeaiError):
    """Base class of the verified-generation errors."""


class BadRequest(LLMError, ValueError):
    """A generation request (or a response's tokens) breaks a bound: sizes, ranges, finiteness."""


class BadProof(LLMError, ValueError):
    """A proof's wire form is malformed: wrong magic or version, sizes or counts out of bounds."""
