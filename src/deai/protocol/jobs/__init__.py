"""Verified computation: the one verification primitive of deai.

A job (:class:`JobSpec`) is a deterministic function (:mod:`~deai.protocol.jobs.kinds`) of
content-addressed inputs and a seed. The :class:`Coordinator` registers it on the ledger, which draws
the executors; hidden sampling (:mod:`~deai.protocol.jobs.sampling`) decides whether it is
replicated; executors commit and reveal (:mod:`~deai.protocol.jobs.commit_reveal`); outputs are
compared bit-exactly or within a calibrated tolerance (:mod:`~deai.protocol.jobs.compare`); the
majority wins and the rest are slashed. Long training jobs use refereed delegation
(:mod:`~deai.protocol.jobs.refereed`). See ``docs/verification.md``.
"""

from deai.protocol.jobs.compare import CompareRule, Decision, decide
from deai.protocol.jobs.coordinator import Coordinator, JobConfig, JobReport
from deai.protocol.jobs.executor import Executor, JobView
from deai.protocol.jobs.kinds import get_kind, kind_names, register_kind
from deai.protocol.jobs.spec import JobSpec

__all__ = [
    "CompareRule",
    "Coordinator",
    "Decision",
    "Executor",
    "JobConfig",
    "JobReport",
    "JobSpec",
    "JobView",
    "decide",
    "get_kind",
    "kind_names",
    "register_kind",
]
