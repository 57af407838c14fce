"""``aggregate``: a (robust) aggregator from the learn layer over a stack of model updates.

Inputs: ``n >= 1`` update blobs with identical layout (names, shapes, dtypes), e.g. flat deltas
``{"delta": [d]}`` or state dicts. Params: ``aggregator`` (a name in the learn layer's aggregator
registry), ``f`` (Byzantine inputs to tolerate, default 0), ``kwargs`` (extra aggregator arguments)
and optional ``weights`` (one non-negative number per input). Output: the aggregate, in the layout
of the inputs (float32). Any randomness in the aggregator (e.g. bucketing) is seeded by the job seed.

Root update (for ``fltrust`` and ``root_gate+...``, which compare every update with the server's
own update on clean data): params ``root`` = the model params plus ``recipe`` (the fields of
:class:`deai.learn.training.TrainConfig`: ``epochs``, ``lr``, ``batch_size``, ``optimizer``, ...),
and the inputs become ``[checkpoint, data, update_1, ...]``. Each executor trains the checkpoint on
``data`` (:func:`~deai.protocol.jobs.kinds.base.dataset_input`) with the recipe, deterministically
on one thread from the job seed, and hands the flat delta to the aggregator as ``root_update``;
the updates must be flat deltas in the model's state-vector order.

Compressed updates (params ``compression`` and ``dim``, :mod:`~deai.protocol.jobs.kinds.sent`) are
checked, decompressed to dense rows and aggregated like any others; the output is ``{"delta": [dim]}``.

Streaming: dense update inputs are :meth:`~JobKind.streamed_inputs`, so an executor opens them as
files (hash verified, header checked) and the aggregator reads them block by block
(:class:`~deai.learn.aggregators.rows.FileRows`): peak memory O(d + n * chunk) plus O(n^2), not
O(n d) (``docs/results/aggregation_memory.md``). Given loaded tensors instead, it stacks them and
runs the same engine, with the same bits. A NaN or infinity met while reading refuses the job with
:class:`InputMismatch` naming the input. Each update is flattened in tensor-name order.

Comparison: tolerance. Means and sorts over the provider axis are bit-exact on one machine but a
weighted sum may be reduced in another order by another BLAS or thread count; the calibrated
worst case is in ``docs/verification.md``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch

from deai.core.tensorio import FlatSpec, flatten, unflatten
from deai.learn.errors import LearnError
from deai.protocol.jobs.compare import CompareRule
from deai.protocol.jobs.errors import BadJobSpec, InputMismatch
from deai.protocol.jobs.kinds.base import (
    KINDS,
    JobKind,
    Layout,
    LazyInput,
    Tensors,
    dataset_input,
    int_param,
)
from deai.protocol.jobs.kinds.model import check_model_params, load_model, model_layout
from deai.protocol.jobs.kinds.sent import check_compression_params, compressed, decompress_input

if TYPE_CHECKING:
    from deai.learn.aggregators.rows import Rows

__all__ = ["Aggregate"]


_RECIPE_KEYS = frozenset(
    {"epochs", "batch_size", "lr", "momentum", "weight_decay", "steps", "optimizer", "grad_clip"}
    | {"schedule", "warmup_steps", "accumulate", "loss"}
)


def _recipe(root: Mapping[str, Any]):
    """The root update's :class:`~deai.learn.training.TrainConfig` from ``root["recipe"]``."""
    from deai.learn.training import TrainConfig

    recipe = root.get("recipe")
    if not isinstance(recipe, dict) or not set(recipe) <= _RECIPE_KEYS:
        raise BadJobSpec(f"params.root.recipe must be an object with keys among {sorted(_RECIPE_KEYS)}")
    for k, v in recipe.items():
        ok = v is None or (isinstance(v, str) and len(v) <= 32)
        ok = ok or (isinstance(v, int | float) and not isinstance(v, bool) and abs(v) <= 1 << 24)
        if not ok:
            raise BadJobSpec(f"params.root.recipe.{k} must be a bounded number or a short name")
    try:
        config = TrainConfig(**recipe)
    except (TypeError, ValueError) as exc:
        raise BadJobSpec(f"params.root.recipe: {exc}") from exc
    if config.steps is None and config.epochs > 1000:
        raise BadJobSpec("params.root.recipe.epochs must be at most 1000")
    return config


def _check_root(root: Any) -> None:
    if not isinstance(root, dict):
        raise BadJobSpec("params.root must be an object (model params and training recipe)")
    check_model_params(root)
    _recipe(root)


def _root_update(root: Mapping[str, Any], checkpoint: Tensors, data: Tensors, seed: int) -> torch.Tensor:
    """The server-side update: the checkpoint trained on the root data with the job's recipe."""
    from deai.learn.federated import root_update
    from deai.learn.training import deterministic, get_flat

    model = load_model(root, checkpoint)
    dataset = dataset_input([data], 0, root, "root")
    with deterministic(1):
        return root_update(model, get_flat(model), dataset, _recipe(root), seed)


def _aggregator(params: Mapping[str, Any]):
    # Imported here: the aggregator registry is optional at import time of the jobs package.
    from deai.learn.aggregators import get_aggregator

    try:
        return get_aggregator(params["aggregator"], f=params.get("f", 0), **params.get("kwargs", {}))
    except (LearnError, TypeError, ValueError) as exc:
        raise BadJobSpec(f"cannot build aggregator {params['aggregator']!r}: {exc}") from exc


def _ordered(update: Tensors) -> Tensors:
    """The update's tensors in name order: the flat order every party derives the same way (a
    safetensors file does not fix one; a :class:`LazyInput` is in name order already)."""
    return update if isinstance(update, LazyInput) else {k: update[k] for k in sorted(update)}


def _rows(updates: Sequence[Tensors]) -> Rows:
    """The updates as a row source: read from their files when opened lazily, else stacked."""
    from deai.learn.aggregators import FileRows, TensorRows

    lazy = [u for u in updates if isinstance(u, LazyInput)]
    if len(lazy) == len(updates):
        return FileRows([u.file for u in lazy], [u.label for u in lazy])
    if lazy:
        raise InputMismatch("aggregate takes its updates either all opened lazily or all loaded")
    return TensorRows(torch.stack([flatten(_ordered(u))[0] for u in updates]))


@KINDS.register("aggregate")
class Aggregate(JobKind):
    rule = CompareRule.tolerance(rtol=1e-5, atol=1e-7)

    def streamed_inputs(self, params: Mapping[str, Any], count: int) -> range:
        if compressed(params):  # decompressed whole (they are small), not read block by block
            return range(0)
        return range(2 if "root" in params else 0, count)

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
        if "root" in params:
            _check_root(params["root"])
        check_compression_params(params)

    def output_layout(self, inputs: Sequence[Tensors], params: Mapping[str, Any]) -> Layout:
        if "root" in params:
            if len(inputs) < 3:
                raise InputMismatch("aggregate with a root update takes [checkpoint, data, update_1, ...]")
            self._check_root_inputs(inputs, params["root"])
            inputs = inputs[2:]
        if not inputs:
            raise InputMismatch("aggregate needs at least one update")
        w = params.get("weights")
        if w is not None and len(w) != len(inputs):
            raise InputMismatch(f"params.weights has {len(w)} entries for {len(inputs)} updates")
        if compressed(params):
            for i, upd in enumerate(inputs):
                decompress_input(upd, params, i)
            return {"delta": ((params["dim"],), torch.float32)}
        spec = FlatSpec.of(_ordered(inputs[0]))
        for i, upd in enumerate(inputs[1:], 1):
            if FlatSpec.of(_ordered(upd)) != spec:
                raise InputMismatch(f"update {i} has another layout than update 0")
        return {name: (shape, torch.float32) for name, shape, _ in spec.entries}

    @staticmethod
    def _check_root_inputs(inputs: Sequence[Tensors], root: Mapping[str, Any]) -> None:
        model_layout(root)
        data = inputs[1]
        if set(data) != {"x", "y"}:
            raise InputMismatch(f"root data must hold exactly x and y, got {sorted(data)}")
        dataset_input(inputs, 1, root, "root data")

    def run(self, inputs: Sequence[Tensors], params: Mapping[str, Any], seed: int) -> Tensors:
        # learn's aggregation step (deai.learn.federated.aggregate_updates), as run_federated runs it
        from deai.learn.federated import aggregate_updates

        root = None
        if "root" in params:
            root = _root_update(params["root"], inputs[0], inputs[1], seed)
            inputs = inputs[2:]
        if compressed(params):
            dense = [{"delta": decompress_input(u, params, i)} for i, u in enumerate(inputs)]
            inputs = dense
        spec = FlatSpec.of(_ordered(inputs[0]))
        try:
            rows = _rows(inputs)
            if root is not None and root.numel() != rows.d:
                raise InputMismatch(f"updates hold {rows.d} values, the model has {root.numel()}")
            w = params.get("weights")
            weights = torch.tensor(w, dtype=torch.float32) if w is not None else None
            out = aggregate_updates(_aggregator(params), rows, weights, root_update=root)
        except LearnError as exc:
            raise InputMismatch(f"aggregation refused the updates: {exc}") from exc
        float_spec = FlatSpec(tuple((n, s, "float32") for n, s, _ in spec.entries))
        return unflatten(out.float(), float_spec)
