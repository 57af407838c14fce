"""``contribution_score``: a round's contribution scores as a verified job.

The incentive layer's scorers (:mod:`deai.learn.scoring`) as a job kind of
:data:`~deai.protocol.jobs.kinds.KINDS`, so every executor that imports the kinds package runs it.
The network's tasks register one per round (:func:`deai.protocol.task.jobspecs.score_job`).

Inputs: ``[checkpoint, data, update_1, ..., update_n]`` -- the round's global checkpoint (the
model's shared state, :func:`deai.learn.training.shared_state`), the task's validation data
(:func:`~deai.protocol.jobs.kinds.base.dataset_input`: labelled features or images, or token windows)
and the committed updates in commit order (flat state-vector deltas ``{"delta": [d]}`` or dicts).
Params: the model (``model``, ``in_features``, ``num_classes``, ``model_kwargs``, as for the
built-in ``score`` kind), ``method`` (a name in :data:`deai.learn.scoring.SCORERS`), ``options``
(the scorer's keyword arguments, e.g. ``{"max_permutations": 32}``), ``metric`` (``neg_loss`` or
``accuracy``), optional ``weights`` (one positive number per update) and optional ``max_samples``
(the cost budget for large models: candidates are evaluated on the first ``max_samples`` validation
samples only -- windows of text for a language model, whose utility is then minus the mean
next-token loss, i.e. minus log-perplexity). Randomness (Shapley permutations, RONI references)
comes from the job seed.

Output: ``scores`` (float64 ``[n]``), ``duplicate_of`` (int64 ``[n]``, -1 when not a merged copy)
and ``evaluations`` (int64 ``[1]``). Comparison: ``duplicate_of`` and ``evaluations`` exactly, the
scores within ``rtol=1e-4, atol=1e-6``: executors on one platform agree bit for bit; across
platforms a truncation decision may flip on a last-bit difference, which the tolerance absorbs
only when the flipped marginal is tiny (then the job escalates; see ``docs/incentives.md``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from deai.learn.errors import LearnError
from deai.learn.scoring import METRICS, SCORERS, RoundUpdates, ValidationUtility, get_scorer
from deai.learn.training import get_flat
from deai.protocol.jobs.compare import CompareRule
from deai.protocol.jobs.errors import BadJobSpec, InputMismatch
from deai.protocol.jobs.kinds.base import KINDS, JobKind, Layout, Tensors, dataset_input, int_param
from deai.protocol.jobs.kinds.model import check_model_params, flat_update, load_model

__all__ = ["KIND", "ContributionScore"]


def _scorer(params: Mapping[str, Any]):
    try:
        return get_scorer(params["method"], **params.get("options", {}))
    except (LearnError, TypeError, ValueError) as exc:
        raise BadJobSpec(f"cannot build scorer {params.get('method')!r}: {exc}") from exc


@KINDS.register("contribution_score")
class ContributionScore(JobKind):
    rule = CompareRule.tolerance(rtol=1e-4, atol=1e-6)

    def check_params(self, params: Mapping[str, Any]) -> None:
        check_model_params(params)
        if params.get("method") not in SCORERS:
            raise BadJobSpec(f"params.method must be one of {SCORERS.names()}, got {params.get('method')!r}")
        if not isinstance(params.get("options", {}), dict):
            raise BadJobSpec("params.options must be an object")
        if params.get("metric", "neg_loss") not in METRICS:
            raise BadJobSpec(f"params.metric must be one of {METRICS}")
        w = params.get("weights")
        if w is not None and (
            not isinstance(w, list)
            or not all(isinstance(x, int | float) and not isinstance(x, bool) and x > 0 for x in w)
        ):
            raise BadJobSpec("params.weights must be a list of positive numbers")
        if "max_samples" in params:
            int_param(params, "max_samples", 1, 1 << 24)
        _scorer(params)

    def output_layout(self, inputs: Sequence[Tensors], params: Mapping[str, Any]) -> Layout:
        if len(inputs) < 3:
            raise InputMismatch("contribution_score takes [checkpoint, data, update_1, ...]")
        dataset_input(inputs, 1, params, "validation")
        n = len(inputs) - 2
        w = params.get("weights")
        if w is not None and len(w) != n:
            raise InputMismatch(f"params.weights has {len(w)} entries for {n} updates")
        return {
            "scores": ((n,), torch.float64),
            "duplicate_of": ((n,), torch.int64),
            "evaluations": ((1,), torch.int64),
        }

    def run(self, inputs: Sequence[Tensors], params: Mapping[str, Any], seed: int) -> Tensors:
        model = load_model(params, inputs[0])
        base = get_flat(model)
        deltas = torch.stack([flat_update(model, u, i) for i, u in enumerate(inputs[2:])])
        val = dataset_input(inputs, 1, params, "validation")
        if "max_samples" in params and params["max_samples"] < len(val):
            val = val.subset(list(range(params["max_samples"])))
        utility = ValidationUtility(model, val, metric=params.get("metric", "neg_loss"))
        w = params.get("weights")
        weights = torch.tensor(w, dtype=torch.float32) if w is not None else None
        try:
            result = _scorer(params)(RoundUpdates(base, deltas, weights), utility, seed=seed)
        except LearnError as exc:
            raise InputMismatch(f"scoring refused the updates: {exc}") from exc
        return {
            "scores": result.scores.double().contiguous(),
            "duplicate_of": result.duplicate_of.long().contiguous(),
            "evaluations": torch.tensor([result.evaluations], dtype=torch.int64),
        }


KIND = ContributionScore.name
