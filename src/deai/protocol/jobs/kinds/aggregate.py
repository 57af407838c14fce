"""``aggregate``: a (robust) aggregator from the learn layer over a stack of model updates.

Inputs: ``n >= 1`` update blobs with identical layout (names, shapes, dtypes), e.g. flat deltas
``{"delta": [d]}`` or state dicts. Params: ``aggregator`` (a name in the learn layer's aggregator
registry), ``f`` (Byzantine inputs to tolerate, default 0), ``kwargs`` (extra aggregator arguments)
and optional ``weights`` (one non-negative number per input). Output: the aggregate, in the layout
of the inputs (float32). Any randomness in the aggregator (e.g. bucketing) is seeded by the job seed.

Comparison: tolerance. Means and sorts over the provider axis are bit-exact on one machine but a
weighted sum may be reduced in another order by another BLAS or thread count; the calibrated
worst case is in ``docs/verification.md``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from deai.core.tensorio import FlatSpec, flatten, unflatten
from deai.learn.errors import LearnError
from deai.protocol.jobs.compare import CompareRule
from deai.protocol.jobs.errors import BadJobSpec, InputMismatch
from deai.protocol.jobs.kinds.base import JobKind, Layout, Tensors, int_param, register_kind

__all__ = ["Aggregate"]


def _aggregator(params: Mapping[str, Any]):
    # Imported here: the aggregator registry is optional at import time of the jobs package.
    from deai.learn.aggregators import get_aggregator

    try:
        return get_aggregator(params["aggregator"], f=params.get("f", 0), **params.get("kwargs", {}))
    except (LearnError, TypeError, ValueError) as exc:
        raise BadJobSpec(f"cannot build aggregator {params['aggregator']!r}: {exc}") from exc


@register_kind("aggregate")
class Aggregate(JobKind):
    rule = CompareRule.tolerance(rtol=1e-5, atol=1e-7)

    def check_params(self, params: Mapping[str, Any]) -> None:
        if not isinstance(params.get("aggregator"), str):
            raise BadJobSpec("params.aggregator must name an aggregator")
        int_param(params, "f", 0, 1 << 20, default=0)
        if not isinstance(params.get("kwargs", {}), dict):
            raise BadJobSpec("params.kwargs must be an object")
        w = params.get("weights")
        if w is not None and (
            not isinstance(w, list) or not all(isinstance(x, int | float) and x >= 0 for x in w)
        ):
            raise BadJobSpec("params.weights must be a list of non-negative numbers")

    def output_layout(self, inputs: Sequence[Tensors], params: Mapping[str, Any]) -> Layout:
        if not inputs:
            raise InputMismatch("aggregate needs at least one update")
        spec = FlatSpec.of(inputs[0])
        for i, upd in enumerate(inputs[1:], 1):
            if FlatSpec.of(upd) != spec:
                raise InputMismatch(f"update {i} has another layout than update 0")
        w = params.get("weights")
        if w is not None and len(w) != len(inputs):
            raise InputMismatch(f"params.weights has {len(w)} entries for {len(inputs)} updates")
        return {name: (shape, torch.float32) for name, shape, _ in spec.entries}

    def run(self, inputs: Sequence[Tensors], params: Mapping[str, Any], seed: int) -> Tensors:
        vecs, spec = zip(*(flatten(u) for u in inputs), strict=True)
        stacked = torch.stack(vecs)
        w = params.get("weights")
        weights = torch.tensor(w, dtype=torch.float32) if w is not None else None
        try:
            out = _aggregator(params)(stacked, weights)
        except LearnError as exc:
            raise InputMismatch(f"aggregation refused the updates: {exc}") from exc
        float_spec = FlatSpec(tuple((n, s, "float32") for n, s, _ in spec[0].entries))
        return unflatten(out.float(), float_spec)
