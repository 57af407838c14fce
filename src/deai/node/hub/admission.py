"""Which tasks a hub agrees to coordinate: its admission policy.

Anyone can post a task naming a hub's account as coordinator, so before the hub adopts one it
checks that the task pays for what it asks of others. A task is refused (and the hub closes it on
the ledger, which refunds its creator) unless its escrowed budget covers, for every round:

- the verified jobs' fees at their worst: :data:`JOBS_PER_ROUND` jobs (aggregation and scoring),
  each paying ``job_fee`` to as many executors as its last escalation draws
  (``redundancy + extra * (max_attempts - 1)``, see :class:`~deai.protocol.jobs.run.JobRun`);
- ``min_data_reward`` for each of the ``min_providers`` data providers it needs: nobody's data or
  training is asked for free (a task with budget 0 and fee 0 is refused).

It also bounds the blobs the task makes every participant fetch: the initial checkpoint and the
validation data are each at most ``max_blob_bytes``. The policy is the hub operator's
(``Hub(admission=...)``); the defaults suit the reference scenarios.
"""

from __future__ import annotations

from dataclasses import dataclass

from deai.core.blobs import BlobStore
from deai.protocol.jobs.run import JobRun
from deai.protocol.task.errors import BadTaskSpec
from deai.protocol.task.spec import TaskSpec

__all__ = ["JOBS_PER_ROUND", "AdmissionPolicy", "TaskRefused"]

JOBS_PER_ROUND = 2  # the aggregation job and the scoring job (TaskCoordinator._start_jobs)


class TaskRefused(BadTaskSpec):
    """The task is well formed but this hub's admission policy does not take it (under-funded)."""


@dataclass(frozen=True)
class AdmissionPolicy:
    """A hub's terms for coordinating a task (see the module docstring)."""

    min_data_reward: int = 10  # per data provider per round, in the smallest unit
    max_blob_bytes: int = 256 << 20  # the initial checkpoint, the validation data

    def max_executors(self, spec: TaskSpec) -> int:
        """The most executors one job of ``spec`` pays: its last escalation's draw."""
        return spec.redundancy + JobRun.extra * (JobRun.max_attempts - 1)

    def required_budget(self, spec: TaskSpec) -> int:
        """The smallest budget this hub coordinates ``spec`` for."""
        fees = JOBS_PER_ROUND * spec.job_fee * self.max_executors(spec)
        return spec.rounds * (fees + self.min_data_reward * spec.min_providers)

    def check(self, spec: TaskSpec, budget: int, store: BlobStore) -> None:
        """Raise :class:`TaskRefused` unless the escrowed ``budget`` covers :meth:`required_budget`
        and the task's blobs are present in ``store`` and within ``max_blob_bytes``."""
        need = self.required_budget(spec)
        if budget < need:
            raise TaskRefused(
                f"the budget {budget} does not cover {spec.rounds} round(s) of job fees at worst and"
                f" {self.min_data_reward} per provider per round: this hub needs at least {need}"
            )
        for what, digest in (("initial checkpoint", spec.init), ("validation data", spec.validation)):
            size = store.size(digest)  # BlobNotFound if it was never uploaded
            if size > self.max_blob_bytes:
                raise TaskRefused(
                    f"the {what} is {size} bytes, over this hub's limit of {self.max_blob_bytes}"
                )
