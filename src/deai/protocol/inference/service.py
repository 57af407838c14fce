"""Verified inference: the user's query is a paid ``infer`` job over staked hosts.

Per request (one batch of inputs from one user):

1. the batch is stored as a safetensors blob ``{"x": float32 [B, F]}``;
2. an ``infer`` job over ``[checkpoint, batch]`` is registered by the user, who escrows the fee;
   the ledger draws ``r`` hosts from the ``host`` stakes (weight: stake × reputation);
3. hidden sampling: with probability ``p`` all ``r`` hosts run it, else one (the hosts cannot tell);
4. hosts commit, reveal and upload logits; outputs are compared within the ``infer`` tolerance;
5. the majority answer is returned; hosts outside it are slashed; each accepted host's fee is
   split on the ledger between the host and the model's royalty pool (``host_bps`` of the model),
   which the model's contributors claim by their provenance shares.

The answer carries the job id, so the user (or anyone) can recheck it against the ledger and the
public blobs.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from deai.core.accounts import Account
from deai.core.blobs import BlobStore
from deai.core.errors import DeaiError, TensorError
from deai.core.tensorio import to_safetensors
from deai.ledger.base import Ledger, ManualClock
from deai.ledger.config import HOST
from deai.protocol.jobs.coordinator import Coordinator, JobConfig, JobReport
from deai.protocol.jobs.executor import Executor
from deai.protocol.jobs.kinds.model import check_model_params
from deai.protocol.jobs.spec import JobSpec

__all__ = ["MAX_BATCH", "Answer", "NoHosts", "ServedModel", "VerifiedInference"]

MAX_BATCH = 4096


class NoHosts(DeaiError):
    """No staked host is eligible to serve a request (stakes below the minimum for the fee)."""


@dataclass(frozen=True)
class ServedModel:
    """A registered model: its ledger id, the checkpoint blob's digest, and how to build it."""

    model_id: str
    checkpoint: str
    params: Mapping[str, Any]

    def __post_init__(self) -> None:
        check_model_params(self.params)


@dataclass
class Answer:
    """The verified answer to one request, with what the ledger recorded about it."""

    job_id: str
    labels: torch.Tensor | None
    logits: torch.Tensor | None
    replicated: bool
    hosts: list[str]
    accepted: list[str]
    slashed: dict[str, int] = field(default_factory=dict)
    fee_escrowed: int = 0

    @property
    def answered(self) -> bool:
        return self.labels is not None


class VerifiedInference:
    """Answers requests for one served model with ``r`` hosts, hidden sampling rate ``p``."""

    def __init__(
        self,
        ledger: Ledger,
        clock: ManualClock,
        store: BlobStore,
        model: ServedModel,
        hosts: Mapping[str, Executor],
        *,
        fee: int = 10,
        r: int = 3,
        p: float = 1.0,
        seed: int = 0,
    ) -> None:
        self.ledger, self.clock, self.store, self.model = ledger, clock, store, model
        self.hosts = dict(hosts)
        self.config = JobConfig(fee=fee, r=r, p=p, role=HOST, model=model.model_id)
        self.rng = random.Random(seed)
        self.seed = seed
        self._count = 0

    def _check(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() != 2:
            raise TensorError("an inference request is a 2-D tensor [batch, features]")
        if x.shape[1] != self.model.params["in_features"]:
            raise TensorError(
                f"request has {x.shape[1]} features, the model takes {self.model.params['in_features']}"
            )
        if not 1 <= x.shape[0] <= MAX_BATCH:
            raise TensorError(f"a request holds 1..{MAX_BATCH} rows, got {x.shape[0]}")
        x = x.to(torch.float32).contiguous()
        if not bool(torch.isfinite(x).all()):
            raise TensorError("request holds non-finite values")
        return x

    def infer(self, user: Account, x: torch.Tensor) -> Answer:
        """Run one verified request for ``user`` (who pays); see the module docstring."""
        x = self._check(x)
        batch = self.store.put(to_safetensors({"x": x}))
        self._count += 1
        spec = JobSpec(
            "infer",
            (self.model.checkpoint, batch),
            dict(self.model.params),
            seed=self.seed,
            # Two identical requests are two jobs; nonces are spaced because an escalation round
            # re-registers the same computation with nonce + 1.
            nonce=self._count << 8,
        )
        # Hosts slashed below the minimum stake for the fee drop out of the draw: ask for at most
        # as many as are eligible (the ledger refuses a job it cannot staff).
        eligible = len(self.ledger.eligible_executors(HOST, self.config.fee, exclude=user.address))
        if eligible == 0:
            raise NoHosts(f"no host holds the stake a fee of {self.config.fee} requires")
        config = replace(self.config, r=min(self.config.r, eligible))
        coordinator = Coordinator(
            self.ledger, self.clock, self.store, user, self.hosts, rng=self.rng, config=config
        )
        report: JobReport = coordinator.run(spec)
        logits = None if report.output is None else report.output["logits"]
        return Answer(
            job_id=report.job_id,
            labels=None if logits is None else logits.argmax(dim=1),
            logits=logits,
            replicated=report.replicated,
            hosts=list(report.executors),
            accepted=list(report.accepted),
            slashed=dict(report.slashed),
            fee_escrowed=config.fee * config.r,
        )
