"""The job kinds, all registered in :data:`KINDS` when this package is imported.

- ``aggregate``: a learn-layer aggregator over stacked updates (the network's round aggregation);
- ``dp_aggregate``: central-DP aggregation of clipped updates (a DP task's round aggregation);
- ``contribution_score``: the incentive layer's scorers on a round's updates (the network's scoring);
- ``infer``: a model's forward pass on a batch (verified inference);
- ``train_steps``: T SGD steps from a checkpoint in a seeded data order;
- ``score``: per-update validation-loss improvement of a checkpoint -- a library kind: the network
  scores with ``contribution_score``; ``score`` is calibrated by ``benchmarks/verification.py``.

Each kind is declared with ``@KINDS.register("name")`` on its class in its own module, imported
here, so any process that imports this package (every executor does) knows every kind.
"""

# The member modules, each declaring its kinds on KINDS:
from deai.protocol.jobs.kinds import (  # noqa: F401
    aggregate,
    contribution_score,
    dp_aggregate,
    infer,
    score,
    train_steps,
)
from deai.protocol.jobs.kinds.base import KINDS, JobKind, Layout, Tensors, get_kind, kind_names, load_inputs
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
]
