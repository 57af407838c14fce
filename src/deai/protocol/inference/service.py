"""A served model: what a verified inference request is checked against.

Verified inference itself runs on the network -- a paid query is an ``infer`` job over staked
hosts, driven by the hub's plugin with the job engine (:mod:`deai.node.hub.inference`,
:class:`~deai.protocol.jobs.run.JobRun`) and requested by the user's client
(:func:`deai.node.user.infer.request_inference`); an in-memory
:class:`~deai.node.launch.inprocess.LocalNetwork` runs that same path in one process. This module holds
the piece both sides share: the model as registered on the ledger, and the request size bound.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from deai.protocol.jobs.kinds.model import check_model_params

__all__ = ["MAX_BATCH", "ServedModel"]

MAX_BATCH = 4096  # rows in one request


@dataclass(frozen=True)
class ServedModel:
    """A registered model: its ledger id, the checkpoint blob's digest, and how to build it."""

    model_id: str
    checkpoint: str
    params: Mapping[str, Any]

    def __post_init__(self) -> None:
        check_model_params(self.params)
