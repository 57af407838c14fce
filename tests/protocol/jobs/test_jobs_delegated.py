"""Delegated training as refereed train_steps jobs on the real ledger: each cheating trainer is
disputed, bisected, re-executed by a drawn referee and slashed; honest trainers on different thread
counts agree bit for bit and are never slashed; a referee that does not answer is redrawn."""

import json

import pytest
import torch
from jobs_helpers import make_net

from deai.core.encoding import hash_value
from deai.core.tensorio import to_safetensors
from deai.learn.models import build_model
from deai.learn.training import shared_state
from deai.ledger.commitments import replication_commitment
from deai.ledger.errors import JobError
from deai.ledger.rules.jobs import REFEREED
from deai.ledger.txs import RegisterJob
from deai.protocol.jobs import JobConfig, JobSpec
from deai.protocol.jobs.cheaters import cheater_names
from deai.protocol.jobs.cheaters.training import TrainingCheater
from deai.protocol.jobs.delegated import DelegatedDriver, RefereedRun
from deai.protocol.jobs.kinds import get_kind
from deai.protocol.jobs.trajectory import HASHES, Trainer, hashes_of, leaf_steps, trajectory_root

TRAINING_CHEATERS = [
    "skip_steps",
    "other_data",
    "fewer_epochs",
    "stale_checkpoint",
    "forged_state",
    "lazy_copy",
]
CNN = {"model": "cnn", "in_features": 64, "num_classes": 4, "model_kwargs": {"channels": [2, 4]}}


def cnn_spec(store, seed, steps=16, every=1):
    g = torch.Generator().manual_seed(seed)
    ck = shared_state(build_model("cnn", 64, 4, seed=seed, channels=[2, 4]))
    data = {"x": torch.randn(48, 1, 8, 8, generator=g), "y": torch.randint(0, 4, (48,), generator=g)}
    inputs = (store.put(to_safetensors(ck)), store.put(to_safetensors(data)))
    params = {**CNN, "steps": steps, "lr": 0.1, "batch_size": 8, "commit_every": every}
    return JobSpec("train_steps", inputs, params, seed=seed)


def driver(net, *, p=1.0, referees=None):
    return DelegatedDriver(
        net.ledger, net.clock, net.store, net.creator, net.executors,
        config=JobConfig(fee=10, r=2, p=p), referees=referees,
    )  # fmt: skip


def slash_reasons(net, job_ids):
    return {
        ev.data["account"]: ev.data["reason"]
        for ev in net.ledger.events(0)
        if ev.kind == "slashed" and ev.data["job"] in job_ids
    }


def test_the_cheating_trainers_are_registered():
    assert set(TRAINING_CHEATERS) <= set(cheater_names())


def test_train_steps_commits_state_hashes_for_the_cnn(store):
    spec = cnn_spec(store, 0, steps=10, every=3)
    from deai.protocol.jobs.kinds.base import load_inputs

    kind = get_kind("train_steps")
    out = kind.execute(load_inputs(store, spec), spec.params, spec.seed)
    assert leaf_steps(10, 3) == [0, 3, 6, 9, 10]
    assert out[HASHES].shape == (5, 32) and len(set(hashes_of(out))) == 5
    plain = kind.execute(
        load_inputs(store, spec), {k: v for k, v in spec.params.items() if k != "commit_every"}, 0
    )
    assert HASHES not in plain
    again = kind.execute(load_inputs(store, spec), spec.params, spec.seed)
    assert trajectory_root(again) == trajectory_root(out)


@pytest.mark.parametrize("cheater", TRAINING_CHEATERS)
def test_each_cheating_trainer_is_caught_and_slashed(tmp_path, cheater):
    net = make_net(tmp_path, ["honest", cheater, "honest"], r=2)
    d = driver(net)
    cheat = next(a for a, e in net.executors.items() if e.behaviour == cheater)
    caught = 0
    for seed in range(6):
        report = d.run(cnn_spec(net.store, seed))
        run = report.run
        assert isinstance(run, RefereedRun) and report.status == "accepted"
        if cheat not in report.required:
            assert not run.disputes and not report.faulted
            continue
        (rec,) = run.disputes
        assert rec.liars == [cheat] and rec.referee not in rec.parties and rec.steps_reexecuted == 1
        assert rec.rounds == 4  # ceil(log2 16)
        assert report.faulted == [cheat] and cheat not in report.accepted
        assert slash_reasons(net, {report.job_id}) == {cheat: "wrong result"}
        caught += 1
        if caught == 2:
            break
    assert caught >= 1


def test_honest_trainers_on_different_thread_counts_agree_and_are_never_slashed(tmp_path):
    net = make_net(tmp_path, ["honest"] * 4, r=2, threads=[1, 2, 3, 4])
    d = driver(net)
    for seed in range(4):
        report = d.run(cnn_spec(net.store, seed, steps=8))
        assert report.status == "accepted" and not report.faulted and not report.run.disputes
        assert len(report.accepted) == 2
    assert not slash_reasons(net, {e.data.get("job") for e in net.ledger.events(0)})


def test_a_referee_that_does_not_answer_is_redrawn(tmp_path):
    net = make_net(tmp_path, ["honest", "skip_steps", "honest", "honest", "honest"], r=2)
    cheat = next(a for a, e in net.executors.items() if e.behaviour == "skip_steps")
    redraws = 0
    for seed in range(8):
        # only one provider answers as a referee: every other draw is a referee that was killed
        alive = next(a for a, e in net.executors.items() if a != cheat)
        d = driver(net, referees={alive: net.executors[alive]})
        report = d.run(cnn_spec(net.store, seed, steps=8))
        if not report.run.disputes:
            continue
        (rec,) = report.run.disputes
        if alive in rec.parties:
            continue
        assert rec.liars == [cheat] and rec.referee == alive and alive not in rec.redrawn
        assert report.faulted == [cheat]
        redraws += len(rec.redrawn)
    assert redraws >= 1


def test_no_referee_answering_escalates_and_slashes_nobody_for_the_dispute(tmp_path):
    net = make_net(tmp_path, ["honest", "skip_steps", "honest"], r=2)
    cheat = next(a for a, e in net.executors.items() if e.behaviour == "skip_steps")
    d = DelegatedDriver(
        net.ledger, net.clock, net.store, net.creator, net.executors,
        config=JobConfig(fee=10, r=2, p=1.0, escalate=False), referees={},
    )  # fmt: skip
    for seed in range(6):
        report = d.run(cnn_spec(net.store, seed, steps=8))
        if cheat in report.required:
            (rec,) = report.run.disputes
            assert rec.referee is None and rec.liars == [] and rec.reason == "no referee answered"
            assert report.run.status == "failed"
            return
    pytest.fail("the cheater was never drawn")


def test_the_ledger_takes_a_one_executor_quorum_only_on_refereed_training(tmp_path):
    net = make_net(tmp_path, ["honest"] * 3, r=2)

    def register(job_type, resolver, label):
        job = hash_value(label)
        return RegisterJob(
            job=job, task=None, job_type=job_type, inputs=(job,), fee=10, executors=2,
            replication=replication_commitment(job, True, 0, hash_value("salt")),
            commit_window_ms=1_000, reveal_window_ms=1_000, resolver=resolver, quorum=REFEREED,
        )  # fmt: skip

    with pytest.raises(JobError, match="quorum"):
        net.ledger.send(net.creator, register("aggregate", net.creator.address, "a"))
    with pytest.raises(JobError, match="quorum"):
        net.ledger.send(net.creator, register("train_steps", None, "b"))
    net.ledger.send(net.creator, register("train_steps", net.creator.address, "c"))
    assert net.ledger.job(hash_value("c")).quorum == REFEREED


def test_a_refereed_run_keeps_its_disputes_across_a_restart(tmp_path):
    net = make_net(tmp_path, ["honest", "forged_state", "honest"], r=2)
    cheat = next(a for a, e in net.executors.items() if e.behaviour == "forged_state")
    d = driver(net)
    for seed in range(6):
        report = d.run(cnn_spec(net.store, seed, steps=8))
        if cheat in report.required:
            data = json.loads(json.dumps(report.run.to_json()))
            again = RefereedRun.from_json(data)
            assert again.disputes == report.run.disputes and again.quorum == REFEREED and again.r == 2
            assert again.disputes[0].step == 8 // 3 and again.status == "accepted"
            return
    pytest.fail("the cheater was never drawn")


class UlpTrainer(Trainer):
    """An honest trainer on "another library build": every step lands a few ulps away."""

    def next_state(self, state, t):
        return {k: v * (1 + 3e-7) for k, v in super().next_state(state, t).items()}


class OtherBuild(TrainingCheater):
    trainer_class = UlpTrainer


def test_an_honest_trainer_on_another_build_is_within_tolerance_and_not_slashed(tmp_path):
    net = make_net(tmp_path, ["honest"] * 3, r=2)
    other = next(iter(net.executors))
    net.executors[other] = OtherBuild(net.executors[other].account, net.store)
    d = driver(net)
    for seed in range(6):
        report = d.run(cnn_spec(net.store, seed, steps=8))
        if other in report.required:
            (rec,) = report.run.disputes  # the hashes differ from step 0 on
            assert rec.step == 0 and rec.liars == [] and sorted(rec.winners) == sorted(report.required)
            assert not report.faulted and sorted(report.accepted) == sorted(report.required)
            return
    pytest.fail("the other build was never drawn")


def test_a_leaf_every_k_steps_reexecutes_one_segment(tmp_path):
    net = make_net(tmp_path, ["honest", "forged_state", "honest"], r=2)
    cheat = next(a for a, e in net.executors.items() if e.behaviour == "forged_state")
    d = driver(net)
    for seed in range(6):
        report = d.run(cnn_spec(net.store, seed, steps=16, every=4))
        if cheat in report.required:
            (rec,) = report.run.disputes  # forged at step 16 // 3 = 5: the segment [4, 8)
            assert rec.liars == [cheat] and rec.rounds == 2 and rec.step == 4 and rec.steps_reexecuted == 4
            assert report.faulted == [cheat]
            return
    pytest.fail("the cheater was never drawn")
