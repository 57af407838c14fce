"""Verified inference: a paid query to a registered model is a verified job run by staked hosts.

See :class:`~deai.protocol.inference.service.VerifiedInference`. Host behaviours for evaluation
(``honest``, ``wrong_answer`` and every cheating executor) are in
:mod:`~deai.protocol.inference.hosts`.
"""

from deai.protocol.inference.hosts import HOST_BEHAVIOURS, WrongAnswer, host_behaviours, make_host
from deai.protocol.inference.service import Answer, ServedModel, VerifiedInference

__all__ = [
    "HOST_BEHAVIOURS",
    "Answer",
    "ServedModel",
    "VerifiedInference",
    "WrongAnswer",
    "host_behaviours",
    "make_host",
]
