"""The federated task lifecycle as sans-IO state machines (see ``docs/network.md``).

- :class:`TaskSpec`: what a task fixes (model, init checkpoint, recipe, aggregator, privacy,
  verification, budget, deadlines); its hash is the task id.
- :class:`TaskCoordinator`: join -> rounds (train, verified aggregation and scoring jobs, checkpoint,
  payout root) -> model registration and close, over a :class:`~deai.ledger.Ledger` and a blob store.
- each verified job runs on the one job engine, :class:`deai.protocol.jobs.JobRun`.
- :class:`ProviderPool`: data providers' vectorized local training, DP, secure aggregation client.
- :class:`ExecutorAgent`: a compute provider's commit and reveal for its job assignments.
"""

from deai.protocol.task.coordinator import TaskCoordinator, TaskState
from deai.protocol.task.errors import BadStatement, BadTaskSpec, BadUpdate, TaskError, WrongPhase
from deai.protocol.task.executor import ExecutorAgent
from deai.protocol.task.provider import ProviderPool
from deai.protocol.task.spec import DPSettings, TaskSpec, Windows
from deai.protocol.task.statements import SecAggStatement, UpdateStatement

__all__ = [
    "BadStatement",
    "BadTaskSpec",
    "BadUpdate",
    "DPSettings",
    "ExecutorAgent",
    "ProviderPool",
    "SecAggStatement",
    "TaskCoordinator",
    "TaskError",
    "TaskSpec",
    "TaskState",
    "UpdateStatement",
    "Windows",
    "WrongPhase",
]
