"""Verified inference: a paid query to a registered model is a verified job run by staked hosts.

The path is the network's (:mod:`deai.node.hub.inference`, :mod:`deai.node.user.infer`);
:class:`ServedModel` is the model a request is checked against. Host behaviours for evaluation
(``honest``, ``wrong_answer`` and every cheating executor) are in
:mod:`~deai.protocol.inference.hosts`.
"""

from deai.protocol.inference.hosts import host_behaviours
from deai.protocol.inference.service import MAX_BATCH, ServedModel

__all__ = ["MAX_BATCH", "ServedModel", "host_behaviours"]
