"""A round of delegated training: the task's training as one refereed ``train_steps`` job.

A task whose spec sets ``delegated`` (:class:`~deai.protocol.task.spec.DelegatedSettings`) has no
data providers training: its creator supplies public training data (a blob) and rents verified
training from staked compute providers. The coordinator skips the join phase and runs each round
``r`` as:

1. :func:`start`: one ``train_steps`` job (:func:`train_job`) -- ``steps`` plain-SGD steps of the
   spec's model from the round's checkpoint over the creator's data, in a batch order drawn from the
   round's job seed, the state committed every ``commit_every`` steps and the inner leaves' states
   kept in the output (``keep_states``) -- driven by a
   :class:`~deai.protocol.jobs.delegated.RefereedRun` with ``r`` drawn executors, hidden sampling
   ``p`` and ``by_resolver``: a disagreement is bisected over the committed hashes in the revealed
   outputs, the one divergent segment re-executed here by the coordinator (the task's resolver) from
   the agreed state read from the outputs, and the party off the referee's state slashed by the
   ledger (``wrong result``) when the run accepts the others. No message beyond commit-reveal.
2. :func:`finish`: the accepted output's checkpoint (without its hashes and kept states) becomes the
   round's checkpoint; the round is posted with its payout (compute only: there are no
   contributions to score; the creator, whose data it is, holds the model's provenance share) and
   recorded with the job's disputes (parties, bisection rounds, the
   divergent step, the referee, who was slashed and why).

Limits: the referee is the coordinator (trusted like every ``accept_result``), not a drawn compute
provider; licensed data from data providers (credited in provenance) is not supported yet.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from deai.core.tensorio import from_safetensors, to_safetensors
from deai.learn.training import evaluate
from deai.protocol.incentives.settlement import ScoreBook
from deai.protocol.jobs.delegated import RefereedRun
from deai.protocol.jobs.spec import JobSpec
from deai.protocol.task.jobspecs import job_seed
from deai.protocol.task.model import load_checkpoint, model_params
from deai.protocol.task.records import Phase, RoundRecord
from deai.protocol.task.settlement import settle_round
from deai.protocol.task.spec import TaskSpec

if TYPE_CHECKING:
    from deai.protocol.task.coordinator import TaskCoordinator

__all__ = ["PURPOSE", "finish", "start", "train_job"]

PURPOSE = "train"


def train_job(spec: TaskSpec, round: int, checkpoint: str) -> JobSpec:
    """Round ``round``'s training job from ``checkpoint`` (a digest) over the creator's data."""
    d = spec.delegated
    assert d is not None  # a delegated task
    params = {
        **model_params(spec),
        "steps": d.steps,
        "lr": spec.lr,
        "batch_size": spec.batch_size,
        "commit_every": d.commit_every,
        "keep_states": True,
    }
    return JobSpec("train_steps", (checkpoint, d.data), params, seed=job_seed(spec.task_id, round, PURPOSE))


def start(coord: TaskCoordinator, r: int, now: int) -> None:
    """Begin round ``r``: its refereed training job, driven by the coordinator's jobs phase."""
    s, spec, w = coord.state, coord.spec, coord.spec.windows
    d = spec.delegated
    assert d is not None
    s.phase, s.round, s.roster, s.updates, s.deadline = Phase.JOBS, r, [], {}, now
    coord.secagg = None
    run = RefereedRun(
        train_job(spec, r, s.checkpoint), PURPOSE, r=d.r, p=d.p, fee=spec.job_fee,
        commit_ms=w.commit_ms, reveal_ms=w.reveal_ms, task=coord.task, by_resolver=True,
    )  # fmt: skip
    coord.jobs = {PURPOSE: run}


def finish(coord: TaskCoordinator, now: int) -> None:
    """Close round ``state.round`` on its accepted training job (see the module doc)."""
    s, spec, store = coord.state, coord.spec, coord.store
    run = coord.jobs[PURPOSE]
    assert run.output is not None and isinstance(run, RefereedRun)  # accepted: see _on_jobs
    names = from_safetensors(store.get(s.checkpoint)).keys()
    out = from_safetensors(store.get(run.output))
    model = load_checkpoint(spec, to_safetensors({k: out[k].contiguous() for k in names}))
    ckpt = store.put(to_safetensors({k: out[k].contiguous() for k in names}))
    job = run.attempts[-1].job
    amounts, alloc = settle_round(
        coord.ledger, coord.account, coord.task, s.round, ckpt,
        round_pool=spec.round_pool(), rule=spec.split_rule(), scores={}, jobs=[(job, run.fees_paid())],
    )  # fmt: skip
    if amounts:
        s.payouts[str(s.round)] = amounts
    # the data is the creator's: the model's provenance credits it (the payout is compute only)
    record = coord.ledger.task(coord.task)
    assert record is not None  # a running task is on the ledger
    book = ScoreBook.from_json(s.scorebook) if s.scorebook else ScoreBook()
    book.add(s.round, [record.creator], [1.0], job=job)
    s.scorebook = book.to_json()
    metrics = evaluate(model, coord._validation_data())
    s.rounds.append(
        RoundRecord(
            round=s.round,
            checkpoint=ckpt,
            contributors=[record.creator],
            updates={},
            scores={record.creator: 1.0},
            aggregate_job=job,
            score_job="",
            scored_on=spec.validation,
            defense="refereed delegation",
            executors={PURPOSE: list(run.accepted)},
            faulted=sorted(run.faulted),
            payout=sum(amounts.values()),
            allocation=alloc.to_json(),
            val_accuracy=metrics["accuracy"],
            val_loss=metrics["loss"],
            val_perplexity=metrics.get("perplexity"),
            time=now,
            disputes=[d.to_json() for d in run.disputes],
        )
    )
    s.previous_checkpoint, s.checkpoint = s.checkpoint, ckpt
    if s.round < spec.rounds:
        start(coord, s.round + 1, now)
    else:
        s.phase = Phase.FINISH
