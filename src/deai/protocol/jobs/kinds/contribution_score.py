"""``contribution_score``: a round's contribution scores as a verified job.

The incentive layer's scorers (:mod:`deai.learn.scoring`) as a job kind of
:data:`~deai.protocol.jobs.kinds.KINDS`, so every executor that imports the kinds package runs it.
The network's tasks register one per round (:func:`deai.protocol.task.jobspecs.score_job`).

Inputs: ``[checkpoint, data, update_1, ..., update_n]`` -- the round's global checkpoint (the
model's shared state, :func:`deai.learn.training.shared_state`), the task's validation data
(:func:`~deai.protocol.jobs.kinds.base.dataset_input`: labelled features or images, or token windows)
and the committed updates in commit order (flat state-vector deltas ``{"delta": [d]}`` or dicts;
compressed ones with params ``compression`` and ``dim``, :mod:`~deai.protocol.jobs.kinds.sent`),
in a canonical order (the network sorts them by address, so the scores do not depend on arrival
timing), with optional ``rank`` (each update's commit rank: who committed first in a group of
copies keeps the credit).
Params: the model (``model``, ``in_features``, ``num_classes``, ``model_kwargs``, as for the
built-in ``score`` kind), ``method`` (a name in :data:`deai.learn.scoring.SCORERS`), ``options``
(the scorer's keyword arguments, e.g. ``{"max_permutations": 32}``), ``metric`` (``neg_loss`` or
``accuracy``), optional ``weights`` (one positive number per update) and optional ``max_samples``
(the cost budget for large models: candidates are evaluated on the first ``max_samples`` validation
samples only -- windows of text for a language model, whose utility is then minus the mean
next-token loss, i.e. minus log-perplexity). Randomness (Shapley permutations, RONI references)
comes from the job seed.

Novelty checks (:func:`deai.learn.scoring.check_updates`) run first: a flagged update scores 0 and
is not a player; a copy merges into the first committer's player. Optional references, each one
more input after the data, in this order, when its param is set:

- ``public``: the model params plus ``recipe`` (exactly the ``aggregate`` kind's ``root``): input =
  the task's public root data; every executor trains the checkpoint on it with the recipe,
  deterministically on one thread from the job seed (the ``aggregate`` kind's own root-update
  engine), and flags updates that are that public-data update (``PUBLIC``);
- ``previous: true``: input = the previous round's global update ``{"delta": [d]}`` (``STALE_GLOBAL``);
- ``history: true``: input = the previous round's accepted ``contribution_score`` output, whose
  ``sketches`` / ``sketch_age`` / ``sketch_index`` (at most :data:`MAX_HISTORY_ROWS` rows of
  :data:`~deai.learn.scoring.SKETCH_DIM` finite float32, ages below
  :data:`~deai.learn.scoring.HISTORY_WINDOW`) are the earlier rounds' updates (``REPLAY``).

``novelty`` (optional): thresholds of :class:`~deai.learn.scoring.NoveltyConfig` by name.

Output: ``scores`` (float64 ``[n]``, 0 for flagged providers), ``duplicate_of`` (int64 ``[n]``, -1
when not a merged copy), ``evaluations`` (int64 ``[1]``), ``flags`` (int64 ``[n]``,
:class:`~deai.learn.scoring.Flag` values), ``source`` (int64 ``[n]``: for ``COPY`` the provider
copied, for ``REPLAY`` the row of the *input* history, else -1), and the history the next round
takes: ``sketches`` (float32 ``[h, k]``: this round's updates first, then the input history's rows
younger than the window), ``sketch_age`` (int64 ``[h]``: rounds before this one; 0 for this round's)
and ``sketch_index`` (int64 ``[h]``: the provider's index in its round). A replayed row ``r`` of
the input history is round ``this - 1 - age[r]``'s update of provider ``index[r]``.

Comparison: integers (``duplicate_of``, ``evaluations``, ``flags``, ``source``, ages, indices)
exactly; scores and sketches within ``rtol=1e-4, atol=1e-6``. Sketches are float64 sums stored as
float32: across platforms they differ by reduction order in the float64 sum only (relative ~1e-15),
below float32's own rounding (6e-8), so 1e-4 is a wide margin. Executors on one platform agree bit
for bit; across platforms a truncation decision (or a check statistic right at its threshold) may
flip on a last-bit difference, which the tolerance absorbs only when the flipped marginal is tiny
(then the job escalates; see ``docs/incentives.md``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any

import torch

from deai.learn.errors import LearnError
from deai.learn.scoring import (
    HISTORY_WINDOW,
    METRICS,
    SCORERS,
    SKETCH_DIM,
    NoveltyConfig,
    RoundUpdates,
    ValidationUtility,
    check_updates,
    get_scorer,
)
from deai.learn.training import get_flat
from deai.protocol.jobs.compare import CompareRule
from deai.protocol.jobs.errors import BadJobSpec, InputMismatch
from deai.protocol.jobs.kinds.aggregate import _check_root, _root_update
from deai.protocol.jobs.kinds.base import KINDS, JobKind, Layout, Tensors, dataset_input, int_param
from deai.protocol.jobs.kinds.model import check_model_params, flat_update, load_model
from deai.protocol.jobs.kinds.sent import check_compression_params, compressed, decompress_input

__all__ = ["KIND", "MAX_HISTORY_ROWS", "ContributionScore", "history_rows"]

MAX_HISTORY_ROWS = HISTORY_WINDOW * 1024
"""Most sketch rows a history input may hold (the window times 1,024 updates a round): 64 MiB."""
_NOVELTY_KEYS = frozenset(f.name for f in fields(NoveltyConfig))


def _novelty(params: Mapping[str, Any]) -> NoveltyConfig:
    raw = params.get("novelty", {})
    if not isinstance(raw, dict) or not set(raw) <= _NOVELTY_KEYS:
        raise BadJobSpec(f"params.novelty must be an object with keys among {sorted(_NOVELTY_KEYS)}")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in raw.values()):
        raise BadJobSpec("params.novelty values must be numbers")
    try:
        return NoveltyConfig(**raw)
    except (TypeError, ValueError) as exc:
        raise BadJobSpec(f"params.novelty: {exc}") from exc


def _refs(params: Mapping[str, Any]) -> tuple[int | None, int | None, int | None, int]:
    """Input positions of the public data, previous update and history, and of the first update."""
    at = 2
    pos: list[int | None] = []
    for key in ("public", "previous", "history"):
        if params.get(key):
            pos.append(at)
            at += 1
        else:
            pos.append(None)
    return pos[0], pos[1], pos[2], at


def history_rows(blob: Tensors) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(sketches float32 [h, k], ages int64 [h], indices int64 [h])`` of a history input,
    bounded and checked (:class:`InputMismatch` when malformed)."""
    if not all(k in blob for k in ("sketches", "sketch_age", "sketch_index")):
        raise InputMismatch("history must hold sketches, sketch_age and sketch_index")
    sk, age, idx = blob["sketches"], blob["sketch_age"], blob["sketch_index"]
    if sk.dtype != torch.float32 or sk.dim() != 2 or sk.shape[1] != SKETCH_DIM:
        raise InputMismatch(
            f"history sketches must be float32 [h, {SKETCH_DIM}], got {sk.dtype} {tuple(sk.shape)}"
        )
    h = sk.shape[0]
    if h > MAX_HISTORY_ROWS:
        raise InputMismatch(f"history holds {h} rows, at most {MAX_HISTORY_ROWS}")
    for name, t in (("sketch_age", age), ("sketch_index", idx)):
        if t.dtype != torch.int64 or t.shape != (h,):
            raise InputMismatch(f"history {name} must be int64 [{h}]")
    if bool((age < 0).any()) or bool((age >= HISTORY_WINDOW).any()):
        raise InputMismatch(f"history ages must lie in [0, {HISTORY_WINDOW})")
    if bool((idx < 0).any()) or bool((idx >= MAX_HISTORY_ROWS).any()):
        raise InputMismatch("history indices out of range")
    if not bool(torch.isfinite(sk).all()):
        raise InputMismatch("history sketches hold non-finite values")
    return sk, age, idx


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
        if "public" in params:
            _check_root(params["public"])
        for key in ("previous", "history"):
            if not isinstance(params.get(key, False), bool):
                raise BadJobSpec(f"params.{key} must be true or false")
        check_compression_params(params)
        rank = params.get("rank")
        if rank is not None and (
            not isinstance(rank, list)
            or not all(isinstance(r, int) and not isinstance(r, bool) for r in rank)
            or sorted(rank) != list(range(len(rank)))
        ):
            raise BadJobSpec("params.rank must be a permutation of 0..n-1 (the updates' commit ranks)")
        _novelty(params)
        _scorer(params)

    def output_layout(self, inputs: Sequence[Tensors], params: Mapping[str, Any]) -> Layout:
        pub, _, hist, first = _refs(params)
        if len(inputs) < first + 1:
            raise InputMismatch(
                f"contribution_score takes [checkpoint, data, {first - 2} reference(s), update_1, ...]"
            )
        dataset_input(inputs, 1, params, "validation")
        if pub is not None:
            dataset_input(inputs, pub, params["public"], "public data")
        n = len(inputs) - first
        if "rank" in params and len(params["rank"]) != n:
            raise InputMismatch(f"params.rank has {len(params['rank'])} entries for {n} updates")
        if compressed(params):
            for i, upd in enumerate(inputs[first:]):
                decompress_input(upd, params, i)
        w = params.get("weights")
        if w is not None and len(w) != n:
            raise InputMismatch(f"params.weights has {len(w)} entries for {n} updates")
        kept = 0
        if hist is not None:
            _, age, _ = history_rows(inputs[hist])
            kept = int((age + 1 < HISTORY_WINDOW).sum())
        h = min(n + kept, MAX_HISTORY_ROWS)
        return {
            "scores": ((n,), torch.float64),
            "duplicate_of": ((n,), torch.int64),
            "evaluations": ((1,), torch.int64),
            "flags": ((n,), torch.int64),
            "source": ((n,), torch.int64),
            "sketches": ((h, SKETCH_DIM), torch.float32),
            "sketch_age": ((h,), torch.int64),
            "sketch_index": ((h,), torch.int64),
        }

    @staticmethod
    def _update(model, update: Tensors, index: int, params: Mapping[str, Any]) -> torch.Tensor:
        """An update as sent: decompressed when the task compresses (scores value what was sent)."""
        if compressed(params):
            return decompress_input(update, params, index)
        return flat_update(model, update, index)

    def run(self, inputs: Sequence[Tensors], params: Mapping[str, Any], seed: int) -> Tensors:
        pub, prev, hist, first = _refs(params)
        model = load_model(params, inputs[0])
        base = get_flat(model)
        deltas = torch.stack([self._update(model, u, i, params) for i, u in enumerate(inputs[first:])])
        public = None if pub is None else _root_update(params["public"], inputs[0], inputs[pub], seed)
        previous = None if prev is None else flat_update(model, inputs[prev], -1)
        h_sk = h_age = h_idx = None
        if hist is not None:
            h_sk, h_age, h_idx = history_rows(inputs[hist])
        try:
            novelty = check_updates(
                deltas,
                public=public,
                previous=previous,
                history=h_sk,
                config=_novelty(params),
                rank=params.get("rank"),
            )
        except LearnError as exc:
            raise InputMismatch(f"the novelty checks refused the inputs: {exc}") from exc
        val = dataset_input(inputs, 1, params, "validation")
        if "max_samples" in params and params["max_samples"] < len(val):
            val = val.subset(list(range(params["max_samples"])))
        utility = ValidationUtility(model, val, metric=params.get("metric", "neg_loss"))
        w = params.get("weights")
        weights = torch.tensor(w, dtype=torch.float32) if w is not None else None
        try:
            result = _scorer(params)(RoundUpdates(base, deltas, weights), utility, seed=seed, novelty=novelty)
        except LearnError as exc:
            raise InputMismatch(f"scoring refused the updates: {exc}") from exc
        n = deltas.shape[0]
        sketches, ages, index = novelty.sketches.float(), torch.zeros(n, dtype=torch.int64), torch.arange(n)
        if h_sk is not None and h_age is not None and h_idx is not None:
            keep = h_age + 1 < HISTORY_WINDOW
            sketches = torch.cat([sketches, h_sk[keep]])
            ages, index = torch.cat([ages, h_age[keep] + 1]), torch.cat([index, h_idx[keep]])
        h = min(sketches.shape[0], MAX_HISTORY_ROWS)  # the oldest rows go first
        return {
            "scores": result.scores.double().contiguous(),
            "duplicate_of": result.duplicate_of.long().contiguous(),
            "evaluations": torch.tensor([result.evaluations], dtype=torch.int64),
            "flags": novelty.flags.long().contiguous(),
            "source": novelty.source.long().contiguous(),
            "sketches": sketches[:h].contiguous(),
            "sketch_age": ages[:h].long().contiguous(),
            "sketch_index": index[:h].long().contiguous(),
        }


KIND = ContributionScore.name
