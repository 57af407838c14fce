"""The verified jobs of a round: which kind, inputs, params and seed (pure functions of the round).

Seeds derive from the task id, the round and the job's purpose, so every party recomputes the same
job ids; the job spec (the job id's preimage) lists every input, so registering it commits the
coordinator to exactly the round's committed updates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields

from deai.core.encoding import sha256
from deai.protocol.jobs.kinds.contribution_score import KIND as SCORE_KIND
from deai.protocol.jobs.spec import JobSpec
from deai.protocol.task.model import dense_tail, model_params, param_count
from deai.protocol.task.spec import TaskSpec

__all__ = [
    "aggregate_job",
    "compression_params",
    "defense",
    "job_seed",
    "needs_root",
    "recipe_params",
    "score_job",
]


def defense(spec: TaskSpec, rows: int) -> str:
    """In words, the rule the round's aggregation job runs over ``rows`` updates (or bucket means):
    printed by the tools and recorded in every round record."""
    from deai.learn.aggregators import describe_default

    mode = None if spec.dp is None else spec.dp.mode
    if mode == "central" or spec.aggregator == "default":  # central DP runs dp_aggregate, whatever is named
        return describe_default(rows, spec.f, secure_aggregation=spec.secure_aggregation, dp_mode=mode)
    what = "bucket means" if spec.secure_aggregation else "updates"
    return f"{spec.aggregator} (f={spec.f} of {rows} {what})"


def compression_params(spec: TaskSpec) -> dict:
    """The params that tell a job its update inputs are compressed (none for dense updates, and
    under secure aggregation, whose bucket means the coordinator expands to dense vectors)."""
    if spec.compression == "none" or spec.secure_aggregation:
        return {}
    return {"compression": spec.compression, "dim": param_count(spec), "tail": dense_tail(spec)}


def job_seed(task: str, round: int, purpose: str) -> int:
    return int.from_bytes(sha256(f"{task}:{round}:{purpose}".encode())[:8], "big") & (2**53 - 1)


def needs_root(spec: TaskSpec) -> bool:
    """Whether the task's aggregator compares updates with a root update (``fltrust``, ``root_gate``)."""
    from deai.learn.aggregators import get_aggregator, needs_root_update

    return needs_root_update(get_aggregator(spec.aggregator, f=spec.f))


def recipe_params(spec: TaskSpec) -> dict:
    """The task's local recipe as job params (the root update of ``aggregate``): the fields of
    :class:`deai.learn.training.TrainConfig`, without the strategy's proximal term and the device
    (each executor's own choice)."""
    config = spec.train_config()
    return {f.name: getattr(config, f.name) for f in fields(config) if f.name not in ("prox_mu", "device")}


def aggregate_job(
    spec: TaskSpec,
    round: int,
    updates: Sequence[str],
    samples: Sequence[int] | None,
    expected: int,
    checkpoint: str | None = None,
) -> JobSpec:
    """The aggregation job over ``updates`` (blob digests, in contributor order).

    If the aggregator needs a root update, the job also takes the round's starting ``checkpoint``
    and the task's validation data as root data: every executor trains the checkpoint on it with
    the task's local recipe (see the ``aggregate`` kind), so the root update is verified like the
    aggregate itself. The validation data is public to the task, so providers can see the root
    data; the gate is a filter against blind attacks, not against one that trains on it.
    """
    seed = job_seed(spec.task_id, round, "aggregate")
    if spec.dp is not None and spec.dp.mode == "central":
        dp_params = {
            "clip": spec.dp.clip,
            "noise_multiplier": spec.dp.noise_multiplier,
            "expected_count": max(expected, 1),
            **compression_params(spec),
        }
        return JobSpec("dp_aggregate", tuple(updates), dp_params, seed)
    params: dict = {"aggregator": spec.aggregator, "f": spec.f, **compression_params(spec)}
    if samples is not None:
        params["weights"] = [int(s) for s in samples]
    if needs_root(spec):
        if checkpoint is None:
            raise ValueError(f"aggregator {spec.aggregator!r}: its root update needs the round checkpoint")
        params["root"] = {**model_params(spec), "recipe": recipe_params(spec)}
        return JobSpec("aggregate", (checkpoint, spec.validation, *updates), params, seed)
    return JobSpec("aggregate", tuple(updates), params, seed)


def score_job(
    spec: TaskSpec,
    round: int,
    checkpoint: str,
    updates: Sequence[str],
    *,
    scoring: str | None = None,
    previous: str | None = None,
    history: str | None = None,
    rank: Sequence[int] | None = None,
) -> JobSpec:
    """The updates' contribution scores (the task's scorer: LOO, GTG-Shapley or RONI) from the
    round's starting checkpoint, with the novelty checks: the ``contribution_score`` kind.

    ``scoring``: digest of the data scored on (default ``spec.validation``); ``previous``: digest of
    the previous round's aggregate output (a ``{"delta": [d]}`` blob; None in round 1);
    ``history``: digest of the previous round's accepted score-job output (None in round 1). The
    public root data the ``PUBLIC`` check trains on (with the task's recipe) is always
    ``spec.validation``. Inputs: ``[checkpoint, scoring, public, previous?, history?, updates...]``.
    """
    seed = job_seed(spec.task_id, round, "score")
    params: dict = {
        **model_params(spec),
        "method": spec.scoring,
        "options": spec.scoring_options,
        "metric": "neg_loss",
        "public": {**model_params(spec), "recipe": recipe_params(spec)},
        **compression_params(spec),
    }
    if spec.score_samples:
        params["max_samples"] = spec.score_samples
    if rank is not None:
        params["rank"] = [int(r) for r in rank]
    refs = [spec.validation]
    if previous is not None:
        params["previous"] = True
        refs.append(previous)
    if history is not None:
        params["history"] = True
        refs.append(history)
    data = spec.validation if scoring is None else scoring
    return JobSpec(SCORE_KIND, (checkpoint, data, *refs, *updates), params, seed)
