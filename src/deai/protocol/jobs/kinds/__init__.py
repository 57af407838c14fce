"""The registry of job kinds; importing this package registers the built-in ones.

- ``aggregate``: a learn-layer aggregator over stacked updates;
- ``score``: per-update validation-loss improvement of a checkpoint;
- ``infer``: a model's forward pass on a batch;
- ``train_steps``: T SGD steps from a checkpoint in a seeded data order.
"""

from deai.protocol.jobs.kinds import aggregate, infer, score, train_steps  # noqa: F401  (registers)
from deai.protocol.jobs.kinds.base import (
    KINDS,
    JobKind,
    Layout,
    Tensors,
    get_kind,
    kind_names,
    load_inputs,
    register_kind,
)
from deai.protocol.jobs.kinds.train_steps import StepProgram

__all__ = [
    "KINDS",
    "JobKind",
    "Layout",
    "StepProgram",
    "Tensors",
    "get_kind",
    "kind_names",
    "load_inputs",
    "register_kind",
]
