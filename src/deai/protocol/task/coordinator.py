"""The coordinator of one federated task: a state machine over the ledger, blobs and time.

Phases (``state.phase``)::

    join -> train(r) -> jobs(r) -> train(r+1) ... -> jobs(R) -> done
      \\________________ failed (too few providers joined / delivered, or a job failed)

- ``join``: providers ``join_task`` on the ledger (locking the task's provider stake). The phase
  ends when ``max_providers`` joined (the first ``max_providers`` to join form every round's roster;
  a later joiner of the same block sits the task out and takes its stake back at the end) or at
  the join deadline -- or, with ``windows.join_grace_ms``, once ``min_providers`` joined and no
  one joined for that long (on the ledger clock, from the step the coordinator saw the last new
  member); with fewer than ``min_providers`` the task fails and the budget is refunded.
- ``train(r)``: the round's global checkpoint (the spec's ``init`` for round 1, the ledger's
  checkpoint of round r-1 after) is public. Providers train, upload their update blob and send a
  signed :class:`~deai.protocol.task.statements.UpdateStatement` (their commitment to the update
  hash), checked here for membership, round, layout and finiteness. The jobs take the updates by
  address (results independent of arrival timing) with their arrival ranks, so a copy never takes
  the credit of an update committed before it. With secure aggregation, they
  run the bucketed SecAgg+ round instead (:mod:`~deai.protocol.task.secagg_round`). The phase ends
  when every member delivered or at the deadline; the round proceeds with those who delivered if
  at least ``min_providers`` did.
- ``jobs(r)``: two verified jobs at once (:class:`~deai.protocol.jobs.run.JobRun`): the robust
  aggregation of the committed updates and their scoring on the round's hidden scoring set, which
  the coordinator reveals now -- the updates are committed -- by copying it from its ``sealed``
  store into the public one (:meth:`TaskSpec.scoring_data`; a set the creator never handed in is
  replaced by the public validation data, and the round record says so). When both are
  accepted the coordinator applies the strategy (:func:`deai.learn.federated.server_step`, the
  same end of round as the in-process ``run_federated``), posts the new checkpoint and the round's
  payout root (:mod:`~deai.protocol.task.settlement`) on the ledger.
- after the last round, the model is registered with its provenance and the task is closed (the
  rest of the budget goes back to the creator).

Every ledger write checks the ledger first, so re-running a step after a crash (the state is saved
by the caller after each step, :meth:`TaskCoordinator.to_json`) never posts anything twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import torch

from deai.core.accounts import Account
from deai.core.blobs import BlobStore
from deai.core.errors import DeaiError
from deai.core.tensorio import from_safetensors, to_safetensors
from deai.learn.compression.errors import CompressionError
from deai.learn.data import Dataset
from deai.learn.federated import server_step
from deai.learn.strategies import get_strategy
from deai.learn.training import evaluate
from deai.ledger.base import Ledger
from deai.ledger.merkle import payout_tree
from deai.protocol.incentives.settlement import ScoreBook
from deai.protocol.jobs.delegated import run_from_json
from deai.protocol.jobs.run import JobRun
from deai.protocol.task import delegated_round
from deai.protocol.task.broadcast import compress_global
from deai.protocol.task.errors import BadStatement, BadUpdate, WrongPhase
from deai.protocol.task.jobspecs import aggregate_job, defense, score_job
from deai.protocol.task.model import (
    apply_flat,
    checkpoint_bytes,
    flat_of,
    load_sent,
    load_update,
    param_count,
    parse_data,
    shared_support,
)
from deai.protocol.task.records import JobSummary, Phase, RoundRecord, RoundView, TaskState, TaskView
from deai.protocol.task.scoring import record_scores, reveal_scoring_set
from deai.protocol.task.secagg_round import SecAggRound
from deai.protocol.task.settlement import (
    HOST_BPS,
    close_out,
    register_model,
    settle_round,
)
from deai.protocol.task.spec import TaskSpec
from deai.protocol.task.statements import SecAggStatement, UpdateStatement

__all__ = ["HOST_BPS", "Phase", "TaskCoordinator", "TaskState"]  # TaskState: see records


class TaskCoordinator:
    """Coordinates the task of ``spec`` as ``account`` (the task's ledger coordinator)."""

    def __init__(
        self,
        spec: TaskSpec,
        ledger: Ledger,
        store: BlobStore,
        account: Account,
        *,
        state: TaskState | None = None,
        now: int = 0,
        sealed: BlobStore | None = None,
    ) -> None:
        self.spec, self.ledger, self.store, self.account = spec, ledger, store, account
        self.sealed = sealed  # the hidden scoring sets handed in by the creator, revealed round by round
        self.state = state or TaskState(
            spec.task_id, join_deadline=now + spec.windows.join_ms, checkpoint=spec.init
        )
        self.dim = param_count(spec)
        self.jobs = {k: run_from_json(v) for k, v in self.state.jobs.items()}
        self.secagg: SecAggRound | None = None
        self._validation: Dataset | None = None
        self._trees: dict = {}
        self._joined = (-1, 0)  # (members seen, ledger time they were first seen): the join grace

    # -- persistence ---------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        self.state.jobs = {k: j.to_json() for k, j in self.jobs.items()}
        return asdict(self.state)

    @classmethod
    def from_json(
        cls,
        spec: TaskSpec,
        ledger: Ledger,
        store: BlobStore,
        account: Account,
        data: dict,
        *,
        sealed: BlobStore | None = None,
    ):
        state = TaskState(**data)
        state.phase = Phase(state.phase)
        state.rounds = [RoundRecord.from_json(r) for r in data.get("rounds", [])]
        return cls(spec, ledger, store, account, state=state, sealed=sealed)

    @property
    def task(self) -> str:
        return self.state.task

    @property
    def over(self) -> bool:
        """The task itself is finished (done or failed)."""
        return self.state.phase in (Phase.DONE, Phase.FAILED)

    @property
    def done(self) -> bool:
        """Finished, and every failed job attempt resolved on the ledger (nothing left to do)."""
        return self.over and not self.state.stale

    def resume(self, now: int) -> None:
        """After a restart of the coordinator: providers could not deliver while it was down, so
        an open join or training phase gets a fresh window (a secure aggregation in progress starts
        over as a new attempt, its server state being lost)."""
        s, w = self.state, self.spec.windows
        if s.phase == Phase.JOIN:
            s.join_deadline = max(s.join_deadline, now + w.join_ms)
        elif s.phase == Phase.TRAIN:
            s.deadline = max(s.deadline, now + w.train_ms)

    # -- inputs from participants -----------------------------------------------------------------

    def on_joined(self, address: str) -> None:
        """A ``task_joined`` event of this task (idempotent)."""
        if address not in self.state.members:
            self.state.members.append(address)

    def submit_update(self, st: UpdateStatement) -> dict[str, Any]:
        """Take a provider's signed update statement; raises a TaskError naming what is wrong."""
        s = self.state
        if st.task != self.task:
            raise BadStatement(f"statement is for task {st.task}, not {self.task}")
        if s.phase != Phase.TRAIN or st.round != s.round or self.spec.secure_aggregation:
            raise WrongPhase(f"task is in phase {s.phase} of round {s.round}; no update for round {st.round}")
        if st.provider not in s.roster:
            raise BadStatement(f"{st.provider} is not in the roster of round {s.round}")
        previous = s.updates.get(st.provider)
        if previous is not None:
            if previous["update"] == st.update:
                return {"accepted": True, "duplicate": True}
            raise BadStatement(f"{st.provider} already committed update {previous['update'][:12]} this round")
        try:
            data = self.store.get(st.update)
        except DeaiError as exc:
            raise BadUpdate(f"update blob {st.update[:12]} is not available: {exc}") from exc
        load_sent(data, self.spec, self.dim)  # layout, dtype and finiteness (decompressed if compressed)
        s.updates[st.provider] = st.to_json()
        return {"accepted": True}

    def submit_secagg(self, st: SecAggStatement) -> dict[str, Any]:
        if st.task != self.task or self.secagg is None or st.round != self.state.round:
            raise WrongPhase(f"no secure aggregation open for round {st.round} of task {st.task}")
        self.secagg.receive(st)
        return {"accepted": True}

    # -- public views -----------------------------------------------------------------------------

    def round_view(self) -> RoundView:
        s = self.state
        return RoundView(
            task=self.task,
            phase=s.phase,
            round=s.round,
            rounds=self.spec.rounds,
            checkpoint=s.checkpoint,
            deadline=s.deadline,
            roster=list(s.roster),
            submitted=sorted(s.updates),
            members=list(s.members),
            secagg=self.secagg.view() if self.secagg is not None and s.phase == Phase.TRAIN else None,
            patch={"base": s.previous_checkpoint, "update": s.global_update}
            if s.global_update and s.previous_checkpoint
            else None,
        )

    def secagg_inbox(self, provider: str) -> dict[str, Any] | None:
        return None if self.secagg is None else self.secagg.inbox(provider)

    def assignments(self, executor: str) -> list[dict[str, Any]]:
        """The open jobs ``executor`` was drawn for, with its private activation flag."""
        out = []
        for run in self.jobs.values():
            for att in run.attempts:
                job = self.ledger.job(att.job)
                if job is None or job.status != "open" or executor not in job.executors:
                    continue
                index = job.executors.index(executor)
                out.append(
                    {
                        "job": att.job,
                        "task": self.task,
                        "executors": list(job.executors),
                        "active": index in run.active(self.account, att.job),
                        "commit_deadline": job.commit_deadline,
                        "reveal_deadline": job.reveal_deadline,
                        "commits": job.commits,
                    }
                )
        return out

    def status(self) -> TaskView:
        s = self.state
        return TaskView(
            task=self.task,
            phase=s.phase,
            round=s.round,
            rounds=self.spec.rounds,
            members=len(s.members),
            delivered=len(s.updates),
            roster=len(s.roster),
            deadline=s.deadline,
            checkpoint=s.checkpoint,
            history=list(s.rounds),
            jobs={k: JobSummary(j.status, len(j.attempts)) for k, j in self.jobs.items()},
            epsilon=s.epsilon,
            model=s.model,
            reason=s.reason,
            stale=len(s.stale),
            scores=s.scorebook or None,
            job_ids=self.job_ids(),
        )

    def job_ids(self) -> list[str]:
        """Every verified job this task registered (all attempts), for reports and settlement."""
        ids = [j for r in self.state.rounds for j in (r.aggregate_job, r.score_job)]
        for run in self.jobs.values():
            ids += [a.job for a in run.attempts if a.job not in ids]
        return ids

    def payout_proofs(self, address: str) -> list[dict[str, Any]]:
        """Claimable payouts of ``address``: epoch, amount and Merkle proof (checked by the ledger)."""
        out = []
        for epoch, amounts in self.state.payouts.items():
            if address in amounts:
                if epoch not in self._trees:
                    self._trees[epoch] = payout_tree(amounts)
                tree = self._trees[epoch]
                out.append({"epoch": int(epoch), "amount": amounts[address], "proof": tree.proof(address)})
        return out

    def next_deadline(self) -> int | None:
        """The earliest time at which waiting alone will let the task progress (for simulations)."""
        s = self.state
        times = []
        if s.phase == Phase.JOIN:
            quiet = self._quiet_until()
            times.append(s.join_deadline if quiet is None else min(s.join_deadline, quiet))
        elif s.phase == Phase.TRAIN:
            times.append(self.secagg.deadline if self.secagg is not None else s.deadline)
        for run in self.jobs.values():
            att = run.current
            job = None if att is None or run.done else self.ledger.job(att.job)
            if job is not None and job.status == "open":
                times.append(job.commit_deadline if job.replicated is None else job.reveal_deadline)
        for stale in [*s.stale, *(j for run in self.jobs.values() for j in run.stale)]:
            j = self.ledger.job(stale)
            if j is not None and j.status == "open":
                times.append(j.reveal_deadline + self.ledger.config.resolve_grace_ms)
        return min(times) if times else None

    def prepare(self) -> None:
        """Work that can be done ahead while waiting (see :meth:`JobRun.prepare`); it changes no
        state, so a runner may call it outside its lock while the executors compute."""
        for run in list(self.jobs.values()):
            run.prepare(self.store)

    # -- driving ----------------------------------------------------------------------------------

    def step(self, now: int) -> bool:
        """Take every action due at ``now``; True if anything changed (then save :meth:`to_json`)."""
        if self.state.phase == Phase.JOIN and self._cancelled():
            return True
        changed = self._resolve_stale(now)
        while True:
            handler = _PHASE_STEPS.get(self.state.phase)
            if handler is None or not handler(self, now):
                return changed
            changed = True

    def _cancelled(self) -> bool:
        """The creator cancelled the task on the ledger (``cancel_task``: possible only before
        anyone joined, so in the join phase): stop, with nothing to pay or close."""
        record = self.ledger.task(self.task)
        if record is None or record.open:
            return False
        self.state.reason = "cancelled by its creator"
        self.state.phase = Phase.FAILED
        return True

    def _resolve_stale(self, now: int) -> bool:
        """Failed attempts are resolved by the ledger's own rule once the grace period has passed
        (committed executors that withheld their reveal slashed, the fee refunded to the task's budget)."""
        from deai.ledger.errors import LedgerError
        from deai.ledger.txs import ResolveJob

        s, did = self.state, False
        for run in self.jobs.values():
            s.stale += [j for j in run.stale if j not in s.stale]
            run.stale = []
        for job_id in list(s.stale):
            job = self.ledger.job(job_id)
            if job is not None and job.status == "open":
                if now < job.reveal_deadline + self.ledger.config.resolve_grace_ms:
                    continue
                try:
                    self.ledger.send(self.account, ResolveJob(job=job_id))
                except LedgerError:
                    continue
            s.stale.remove(job_id)
            did = True
        return did

    def _quiet_until(self) -> int | None:
        """With a join grace: when the join phase may end early (``min_providers`` joined and
        nobody joined for ``join_grace_ms`` since the last new member was seen); else None."""
        seen, since = self._joined
        grace = self.spec.windows.join_grace_ms
        if not grace or seen != len(self.state.members) or seen < self.spec.min_providers:
            return None
        return since + grace

    def _on_join(self, now: int) -> bool:
        s, spec = self.state, self.spec
        if spec.delegated is not None:  # compute providers train: nobody joins (delegated_round.py)
            delegated_round.start(self, 1, now)
            return True
        if len(s.members) != self._joined[0]:
            self._joined = (len(s.members), now)
        quiet = self._quiet_until()
        early = quiet is not None and now >= quiet
        if len(s.members) < spec.max_providers and now < s.join_deadline and not early:
            return False
        if len(s.members) < spec.min_providers:
            return self._fail(f"only {len(s.members)} providers joined, the task needs {spec.min_providers}")
        self._start_round(1, now)
        return True

    def _start_round(self, r: int, now: int) -> None:
        s = self.state
        # the first max_providers to join (in ledger order); a later joiner sits the task out
        roster = sorted(s.members[: self.spec.max_providers])
        s.phase, s.round, s.roster, s.updates = Phase.TRAIN, r, roster, {}
        s.deadline = now + self.spec.windows.train_ms
        self.jobs = {}
        self.secagg = None

    def _on_train(self, now: int) -> bool:
        s, spec = self.state, self.spec
        if spec.secure_aggregation:
            return self._secagg_step(now)
        if len(s.updates) < len(s.roster) and now < s.deadline:
            return False
        if len(s.updates) < spec.min_providers:
            return self._fail(
                f"round {s.round}: {len(s.updates)} providers delivered, need {spec.min_providers}"
            )
        # jobs take the updates by address (their results must not depend on arrival timing); the
        # commit ranks go along so the first committer of a group of copies keeps the credit
        arrival = list(s.updates)
        contributors = sorted(arrival)
        digests = [s.updates[a]["update"] for a in contributors]
        samples = [s.updates[a]["samples"] for a in contributors]
        rank = [arrival.index(a) for a in contributors]
        self._start_jobs(now, digests, samples, len(s.roster), rank)
        return True

    def _secagg_step(self, now: int) -> bool:
        s, spec = self.state, self.spec
        if self.secagg is None:
            if len(s.roster) < 2:
                return self._fail("secure aggregation needs at least 2 providers")
            s.secagg_attempt += 1
            clip = spec.dp.clip if spec.dp is not None else 1.0
            support = shared_support(spec, s.round, self.dim)  # random-k: only its k values are masked
            dim = self.dim if support is None else len(support)
            self.secagg = SecAggRound(
                self.task, s.round, s.secagg_attempt, s.roster, dim, clip, spec.bucket_size, s.deadline
            )
            return True
        sa = self.secagg
        if not sa.ready(now):
            return False
        sa.close(now, spec.windows.secagg_ms)
        if not sa.done:
            return True
        included = [a for b in sorted(sa.included) for a in sa.included[b]]
        if len(included) < spec.min_providers or not sa.means:
            return self._fail(f"round {s.round}: secure aggregation kept {len(included)} providers")
        s.updates = {}
        digests = []
        support = shared_support(spec, s.round, self.dim)
        for b in sorted(sa.means):
            mean = sa.means[b]
            if support is not None:  # back to the state vector: zeros off the round's support
                mean = torch.zeros(self.dim, dtype=mean.dtype).index_copy_(0, support, mean)
            digest = self.store.put(to_safetensors({"delta": mean}))
            digests.append(digest)
            s.updates[f"bucket{b}"] = {"update": digest, "members": sa.included[b]}
        self._start_jobs(now, digests, None, len(s.roster))
        return True

    def _start_jobs(
        self,
        now: int,
        digests: list[str],
        samples: list[int] | None,
        expected: int,
        rank: list[int] | None = None,
    ) -> None:
        s, spec, w = self.state, self.spec, self.spec.windows
        common: dict[str, Any] = dict(
            r=spec.redundancy,
            p=spec.sample_rate,
            fee=spec.job_fee,
            commit_ms=w.commit_ms,
            reveal_ms=w.reveal_ms,
            task=self.task,
        )
        self.jobs = {
            "aggregate": JobRun(
                aggregate_job(spec, s.round, digests, samples, expected, s.checkpoint), "aggregate", **common
            ),
            "score": JobRun(
                score_job(
                    spec,
                    s.round,
                    s.checkpoint,
                    digests,
                    scoring=reveal_scoring_set(spec, self.store, self.sealed, s.round),
                    previous=s.aggregate_output,
                    history=s.score_output,
                    rank=rank,
                ),
                "score",
                **common,
            ),
        }
        s.phase = Phase.JOBS

    def _on_jobs(self, now: int) -> bool:
        changed = False
        for run in self.jobs.values():
            while run.step(self.ledger, self.store, self.account, now):
                changed = True
            # attempts left to resolve after the grace outlive the round's runs
            self.state.stale += [j for j in run.stale if j not in self.state.stale]
            run.stale = []
        if any(run.status == "failed" for run in self.jobs.values()):
            failed = [k for k, r in self.jobs.items() if r.status == "failed"]
            why = "; ".join(r for k in failed for r in self.jobs[k].refusals if r.startswith("register:"))
            return self._fail(
                f"round {self.state.round}: verified job(s) {failed} {why or 'found no majority'}"
            )
        if all(run.status == "accepted" for run in self.jobs.values()):
            self._finish_round(now)
            return True
        return changed

    def _finish_round(self, now: int) -> None:
        if self.spec.delegated is not None:
            delegated_round.finish(self, now)
            return
        s, spec, ledger = self.state, self.spec, self.ledger
        agg, score = self.jobs["aggregate"], self.jobs["score"]
        assert agg.output is not None and score.output is not None  # both accepted: see _on_jobs
        base = self.store.get(s.checkpoint)
        delta = load_update(self.store.get(agg.output), self.dim)
        # the end of round is learn's server step (what run_federated runs), on the verified aggregate
        strategy = get_strategy(spec.strategy, **spec.strategy_kwargs)
        previous = from_safetensors(self.store.get(s.strategy_state)) if s.strategy_state else None
        base_vec = flat_of(spec, base)
        server = server_step(strategy, base_vec.clone(), delta, previous)
        new_vec, patch = server.global_vec, None
        if spec.global_compression != "none":  # broadcast a compressed global step (broadcast.py)
            carried = from_safetensors(self.store.get(s.global_residual)) if s.global_residual else None
            try:
                step = compress_global(
                    spec,
                    s.round,
                    base_vec,
                    new_vec,
                    None if carried is None else carried["residual"],
                )
            except CompressionError as exc:  # a diverged model: nothing sensible to broadcast
                self._fail(f"round {s.round}: the global update cannot be compressed: {exc}")
                return
            new_vec, patch = step.applied, self.store.put(step.wire)
            kept = self.store.put(to_safetensors({"residual": step.residual.contiguous()}))
        model = apply_flat(spec, base, new_vec)
        ckpt = self.store.put(checkpoint_bytes(model))
        s.strategy_state = self.store.put(to_safetensors(server.state)) if server.state else None
        out = from_safetensors(self.store.get(score.output))
        history = from_safetensors(self.store.get(s.score_output)) if s.score_output else None
        book = ScoreBook.from_json(s.scorebook) if s.scorebook else ScoreBook()
        contributors, per = record_scores(
            book,
            s.round,
            s.updates,
            out,
            job=score.attempts[-1].job,
            secure_aggregation=spec.secure_aggregation,
            history=history,
            rounds=s.rounds,
        )
        s.scorebook = book.to_json()
        amounts, alloc = settle_round(
            ledger,
            self.account,
            self.task,
            s.round,
            ckpt,
            round_pool=spec.round_pool(),
            rule=spec.split_rule(),
            scores=book.rounds[s.round],
            jobs=[(agg.attempts[-1].job, agg.fees_paid()), (score.attempts[-1].job, score.fees_paid())],
        )
        if amounts:
            s.payouts[str(s.round)] = amounts
            for a, v in amounts.items():
                if a in contributors:
                    s.earned[a] = s.earned.get(a, 0) + v
        dp = spec.dp
        if dp is not None and dp.noise_multiplier > 0:
            s.dp_steps.append([dp.noise_multiplier, dp.sample_rate(len(contributors), len(s.roster))])
            s.epsilon = dp.epsilon(s.dp_steps)
        val = self._validation_data()
        if spec.score_samples and spec.score_samples < len(val):
            val = val.subset(list(range(spec.score_samples)))  # the scoring budget bounds this too
        metrics = evaluate(model, val)
        s.rounds.append(
            RoundRecord(
                round=s.round,
                checkpoint=ckpt,
                contributors=contributors,
                updates={k: v["update"] for k, v in s.updates.items()},
                scores=dict(zip(contributors, per, strict=True)),
                aggregate_job=agg.attempts[-1].job,
                score_job=score.attempts[-1].job,
                scored_on=score.spec.inputs[1],
                defense=defense(spec, len(s.updates)),
                executors={"aggregate": agg.accepted, "score": score.accepted},
                faulted=sorted(set(agg.faulted) | set(score.faulted)),
                payout=sum(amounts.values()),
                allocation=alloc.to_json(),
                val_accuracy=metrics["accuracy"],
                val_loss=metrics["loss"],
                val_perplexity=metrics.get("perplexity"),
                epsilon=s.epsilon,
                time=now,
            )
        )
        s.previous_checkpoint, s.checkpoint = s.checkpoint, ckpt
        if patch is not None:
            s.global_update, s.global_residual = patch, kept
        s.aggregate_output, s.score_output = agg.output, score.output
        if s.round < spec.rounds:
            self._start_round(s.round + 1, now)
        else:
            s.phase = Phase.FINISH

    def _validation_data(self) -> Dataset:
        if self._validation is None:
            self._validation = parse_data(
                self.store.get(self.spec.validation), self.spec.in_features, self.spec.num_classes
            )
        return self._validation

    def _on_finish(self, now: int) -> bool:
        s = self.state
        if s.rounds:
            contributors = sorted({a for r in s.rounds for a in r.contributors})
            s.model = register_model(
                self.ledger,
                self.store,
                self.account,
                self.task,
                s.checkpoint,
                ScoreBook.from_json(s.scorebook).totals(),
                contributors,
                self.spec.scoring,
                len(s.rounds),
            )
        close_out(self.ledger, self.account, self.task, s.payouts)
        s.phase = Phase.FAILED if s.reason else Phase.DONE
        return True

    def _fail(self, reason: str) -> bool:
        self.state.reason = reason
        self.state.phase = Phase.FINISH
        return True


# What each phase does when the task is stepped; done and failed tasks do nothing.
_PHASE_STEPS: dict[Phase, Callable[[TaskCoordinator, int], bool]] = {
    Phase.JOIN: TaskCoordinator._on_join,
    Phase.TRAIN: TaskCoordinator._on_train,
    Phase.JOBS: TaskCoordinator._on_jobs,
    Phase.FINISH: TaskCoordinator._on_finish,
}
