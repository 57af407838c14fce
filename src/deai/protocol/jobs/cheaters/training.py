"""The base of the cheating trainers: an executor that runs its own :class:`Trainer` on
``train_steps`` jobs with committed state hashes (``params.commit_every``).

Each cheating trainer (one file each, registered on :data:`CHEATERS`) subclasses
:class:`TrainingCheater` with a :class:`~deai.protocol.jobs.trajectory.Trainer` subclass as
``trainer_class``; the executor keeps the trainer per job, so in a dispute it uploads the states its
commitments claim (:func:`deai.protocol.jobs.delegated.party_state`). On any other job (an
aggregation, a score, an inference) it cheats like ``fake_result``, which it extends, so as a
compute-provider or host behaviour in a scenario it is a cheater everywhere.
Every cheat here is caught by the bisection and the referee's one re-executed segment.
"""

from __future__ import annotations

from deai.core.accounts import Account
from deai.core.blobs import BlobStore
from deai.learn.training import deterministic
from deai.protocol.jobs.cheaters.fake_result import FakeResult
from deai.protocol.jobs.executor import JobView
from deai.protocol.jobs.kinds.base import Tensors, load_inputs
from deai.protocol.jobs.kinds.train_steps import StepProgram
from deai.protocol.jobs.trajectory import Trainer

__all__ = ["TrainingCheater"]


class TrainingCheater(FakeResult):
    trainer_class: type[Trainer] = Trainer

    def __init__(self, account: Account, store: BlobStore, **kwargs) -> None:
        super().__init__(account, store, **kwargs)
        self.trainers: dict[str, Trainer] = {}

    def make_trainer(self, program: StepProgram, every: int) -> Trainer:
        return self.trainer_class(program, every=every)

    def produce(self, view: JobView) -> Tensors:
        spec = view.spec
        if spec.kind != "train_steps" or "commit_every" not in spec.params:
            return super().produce(view)
        with deterministic(threads=1):
            program = StepProgram.from_job(load_inputs(self.store, spec), spec.params, spec.seed)
            trainer = self.make_trainer(program, spec.params["commit_every"])
        self.trainers[spec.job_id] = trainer
        self.executions += 1
        return trainer.output()
