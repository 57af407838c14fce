"""Verified computation: the one verification primitive of deai.

A job (:class:`JobSpec`) is a deterministic function (:mod:`~deai.protocol.jobs.kinds`) of
content-addressed inputs and a seed. One engine runs it, on the network and in-process alike:
:class:`JobRun` (:mod:`~deai.protocol.jobs.run`) registers it on the ledger, which draws the
executors; hidden sampling (:mod:`~deai.protocol.jobs.sampling`) decides whether it is replicated;
executors commit and reveal (:mod:`~deai.protocol.jobs.commit_reveal`); outputs are compared
bit-exactly or within a calibrated tolerance (:mod:`~deai.protocol.jobs.compare`); the majority
wins, a disputed job escalates, the rest are slashed. :class:`JobDriver` steps that engine with
in-process executors for tests and benchmarks. Refereed delegation
(:mod:`~deai.protocol.jobs.refereed`) is a library piece. See ``docs/verification.md``.
"""

from deai.protocol.jobs.compare import CompareRule, Decision, decide
from deai.protocol.jobs.driver import JobConfig, JobDriver, JobReport
from deai.protocol.jobs.executor import Executor, JobView
from deai.protocol.jobs.kinds import KINDS, get_kind, kind_names
from deai.protocol.jobs.run import JobRun
from deai.protocol.jobs.spec import JobSpec

__all__ = [
    "KINDS",
    "CompareRule",
    "Decision",
    "Executor",
    "JobConfig",
    "JobDriver",
    "JobReport",
    "JobRun",
    "JobSpec",
    "JobView",
    "decide",
    "get_kind",
    "kind_names",
]
