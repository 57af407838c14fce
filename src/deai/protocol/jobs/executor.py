"""The honest executor, and the view of a job every drawn executor gets.

An executor is driven by the coordinator (or, on a network, by its node) in two phases:

- :meth:`Executor.commit` during the commit window: an *active* executor fetches the spec's inputs
  by hash from the :class:`~deai.core.blobs.BlobStore` (each read re-hashes the bytes), checks them,
  runs the job kind, uploads the output as a safetensors blob and returns ``H(job ‖ itself ‖ digest ‖
  salt)``. A *standby* executor (drawn but not activated because the job is not replicated) returns
  a decoy commitment of random bytes, so the commitments on the ledger look the same whether or not
  the job is replicated.
- :meth:`Executor.reveal` once reveals are open: the active executor returns its digest and salt.

Both may return ``None`` to wait; the coordinator asks again later in the window with an updated
:class:`JobView` (this is what a copycat exploits, and why it fails). Each message carries the
ledger time at which the executor sends it, so a late executor is modelled exactly.
Set ``threads`` to run the kind under a given ``torch.set_num_threads`` (the benchmark varies it to
check that honest executors on different settings still agree).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

from deai.core.accounts import Account
from deai.core.blobs import BlobStore
from deai.core.tensorio import to_safetensors
from deai.ledger.commitments import derived_salt
from deai.protocol.jobs.commit_reveal import Opening, commit_output
from deai.protocol.jobs.kinds.base import Layout, Tensors, close_inputs, get_kind, load_inputs
from deai.protocol.jobs.spec import JobSpec

__all__ = ["CommitMsg", "Executor", "JobView", "RevealMsg"]


@dataclass(frozen=True)
class JobView:
    """What an executor knows about a job at time ``now`` (ms of the ledger clock).

    Everything but ``active`` is public on the ledger and the same for every drawn executor;
    ``active`` is the creator's private activation message. ``work``: the computation this
    executor owes when it differs from the job's own (a verifier of a generated answer runs
    ``llm_verify`` over it inside an ``llm_generate`` job: :mod:`deai.protocol.inference.llm.jobs`).
    """

    spec: JobSpec
    executors: tuple[str, ...]
    commit_deadline: int
    reveal_deadline: int
    now: int
    active: bool
    commitments: Mapping[str, str] = field(default_factory=dict)
    reveals: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    work: JobSpec | None = None

    @property
    def job_id(self) -> str:
        return self.spec.job_id


@dataclass(frozen=True)
class CommitMsg:
    commitment: str
    at: int


@dataclass(frozen=True)
class RevealMsg:
    digest: str
    salt: str
    at: int


class Executor:
    """An honest compute provider. Subclasses (the cheaters) override :meth:`produce` or the phases."""

    behaviour = "honest"

    def __init__(self, account: Account, store: BlobStore, *, threads: int | None = None) -> None:
        self.account = account
        self.store = store
        self.threads = threads
        self.openings: dict[str, Opening] = {}
        self.executions = 0  # jobs this executor actually computed (for overhead accounting)
        self.compute_seconds = 0.0

    @property
    def address(self) -> str:
        return self.account.address

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.address[:10]})"

    # -- the work ---------------------------------------------------------------------------------

    def compute(self, spec: JobSpec) -> Tensors:
        """Fetch and verify the inputs, run the kind (under ``threads`` if set). Inputs the kind
        streams (:meth:`~deai.protocol.jobs.kinds.base.JobKind.streamed_inputs`) are opened
        lazily and closed afterwards."""
        kind = get_kind(spec.kind)
        start = time.perf_counter()
        # lazy: inputs the kind streams (e.g. aggregate's updates) are opened, not loaded whole
        inputs = load_inputs(self.store, spec, lazy=True)
        prev = torch.get_num_threads()
        if self.threads is not None:
            torch.set_num_threads(self.threads)
        try:
            out = kind.execute(inputs, spec.params, spec.seed)
        finally:
            torch.set_num_threads(prev)
            close_inputs(inputs)
        self.executions += 1
        self.compute_seconds += time.perf_counter() - start
        return out

    def layout(self, spec: JobSpec) -> Layout:
        """The output layout (cheap: no computation), for cheaters that fake an output."""
        return get_kind(spec.kind).output_layout(load_inputs(self.store, spec), spec.params)

    def produce(self, view: JobView) -> Tensors:
        """The output this executor uploads; honest: the real computation."""
        return self.compute(view.work or view.spec)

    def upload(self, tensors: Tensors) -> str:
        return self.store.put(to_safetensors(tensors))

    # -- the protocol -----------------------------------------------------------------------------

    def commit(self, view: JobView) -> CommitMsg | None:
        if not view.active:  # a decoy commitment hides the sampling; salts are derived, not drawn,
            # so they stay secret to this executor yet a seeded run reproduces the ledger exactly
            return CommitMsg(derived_salt(self.account, "decoy", view.job_id), view.now)
        digest = self.upload(self.produce(view))
        opening = commit_output(
            view.job_id, self.address, digest, salt=derived_salt(self.account, "salt", view.job_id, digest)
        )
        self.openings[view.job_id] = opening
        return CommitMsg(opening.commitment, view.now)

    def reveal(self, view: JobView) -> RevealMsg | None:
        opening = self.openings.pop(view.job_id, None)
        if opening is None:
            return None
        return RevealMsg(opening.digest, opening.salt, view.now)
