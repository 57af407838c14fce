import pytest
import torch
from jobs_helpers import STAKE, make_net

from deai.core.tensorio import to_safetensors
from deai.ledger.config import COMPUTE
from deai.protocol.jobs import JobConfig, JobSpec
from deai.protocol.jobs.cheaters import make_executor
from deai.protocol.jobs.driver import verify_draw
from deai.protocol.jobs.executor import Executor

# Which refusal each cheater must trigger (None: it is simply outvoted).
EXPECTED = {
    "fake_result": None,
    "lazy": None,
    "copycat": "CommitmentMismatch",
    "late_revealer": "RevealAfterDeadline",
}


@pytest.mark.parametrize("cheater", sorted(EXPECTED))
def test_every_cheater_is_caught_and_no_honest_executor_slashed(tmp_path, cheater):
    net = make_net(tmp_path, ["honest"] * 3 + [cheater], p=1.0, threads=[1, 2])
    caught = 0
    for j in range(12):
        rep = net.coordinator.run(net.agg_spec(j))
        assert rep.replicated and rep.output is not None
        bad = [a for a in rep.required if net.behaviour(a) == cheater]
        assert sorted(rep.faulted) == sorted(bad), rep
        assert all(net.behaviour(a) == "honest" for a in rep.accepted)
        for a in bad:
            assert rep.slashed[a] > 0
            if EXPECTED[cheater]:
                assert any(r.executor == a and r.error == EXPECTED[cheater] for r in rep.refusals)
        caught += len(bad)
    assert caught >= 2
    for a, ex in net.executors.items():
        assert (net.ledger.stake(a, COMPUTE) == STAKE) == (ex.behaviour == "honest")
    net.ledger.check_invariants()


def test_colluding_majority_is_overturned_by_escalation(tmp_path):
    net = make_net(tmp_path, ["honest"] * 3 + ["colluding"] * 2, p=1.0)
    escalated = 0
    for j in range(15):
        rep = net.coordinator.run(net.agg_spec(j))
        colluders = {a for a in rep.required if net.behaviour(a) == "colluding"}
        assert colluders <= set(rep.faulted)
        assert not any(net.behaviour(a) == "honest" for a in rep.faulted)
        escalated += rep.escalated
    assert escalated > 0
    for a, ex in net.executors.items():
        assert (net.ledger.stake(a, COMPUTE) < STAKE) == (ex.behaviour == "colluding")


def test_hidden_sampling_standbys_commit_decoys_and_are_not_slashed(tmp_path):
    net = make_net(tmp_path, ["honest"] * 5, p=0.0)
    for j in range(5):
        spec = net.agg_spec(j)
        rep = net.coordinator.run(spec)
        assert not rep.replicated and len(rep.required) == 1 and rep.accepted == rep.required
        # every drawn executor committed, so the ledger looks the same as for a replicated job
        assert all(net.ledger.commitment(spec.job_id, a) is not None for a in rep.executors)
        assert rep.faulted == [] and rep.executions == 1
    assert sum(ex.executions for ex in net.executors.values()) == 5


def test_the_draw_is_recomputable(tmp_path):
    net = make_net(tmp_path, ["honest"] * 6, p=1.0)
    spec = net.agg_spec(1)
    net.store.put(spec.to_bytes())
    candidates = net.ledger.eligible_executors(COMPUTE, 10, exclude=net.creator.address)
    head = net.ledger.head().hash
    rep = net.coordinator.run(spec)
    assert verify_draw(candidates, head, spec.job_id, net.ledger.job(spec.job_id))
    assert len(set(rep.executors)) == 3


def test_no_majority_refunds_without_slashing(tmp_path):
    net = make_net(tmp_path, ["honest", "fake_result", "lazy"], p=1.0)
    net.coordinator.config = JobConfig(fee=10, r=3, p=1.0, extra=0)
    before = net.ledger.balance(net.creator.address)
    rep = net.coordinator.run(net.agg_spec(3))
    assert rep.escalated and rep.output is None and rep.status == "no_majority"
    assert rep.slashed == {} and rep.accepted == []
    assert net.ledger.balance(net.creator.address) == before  # both rounds refunded


class WrongShape(Executor):
    def produce(self, view):
        return {"delta": torch.zeros(3)}


class NonFinite(Executor):
    def produce(self, view):
        out = self.compute(view.spec)
        return {k: v / 0 for k, v in out.items()}


class Tamperer(Executor):
    """Reveals a digest whose stored bytes were swapped after the commit."""

    def upload(self, tensors):  # its own blob (metadata makes the bytes unique), tampered below
        return self.store.put(to_safetensors(tensors, metadata={"by": self.address}))

    def reveal(self, view):
        msg = super().reveal(view)
        if msg is not None:
            self.store.path(msg.digest[2:]).write_bytes(to_safetensors({"delta": torch.ones(64)}))
        return msg


@pytest.mark.parametrize(
    "bad, error",
    [
        (WrongShape, "BadOutput"),
        (NonFinite, "BadOutput"),
        (Tamperer, "UploadMismatch"),
        ("late_commit", "CommitAfterDeadline"),
    ],
)
def test_bad_input_is_refused_and_the_job_resolves(tmp_path, bad, error):
    net = make_net(tmp_path, ["honest"] * 3, p=1.0)
    victim = next(iter(net.executors))
    acct = net.executors[victim].account
    net.executors[victim] = (
        make_executor("late_revealer", acct, net.store, late_commit=True)
        if bad == "late_commit"
        else bad(acct, net.store)
    )
    net.coordinator.executors[victim] = net.executors[victim]
    rep = net.coordinator.run(net.agg_spec(7))
    refusal = next(r for r in rep.refusals if r.executor == victim)
    assert refusal.error == error and refusal.reason
    # a late commit is refused, so it never took the duty: missed, not slashed (issue 12, finding 11)
    faulted = [] if bad == "late_commit" else [victim]
    assert rep.status == "accepted" and rep.faulted == faulted and len(rep.accepted) == 2


def test_honest_executors_agree_across_thread_counts_on_inference(tmp_path):
    from deai.learn.models import build_model

    net = make_net(tmp_path, ["honest"] * 3, p=1.0, threads=[1, 2, 3])
    ck = {k: v.clone() for k, v in build_model("cnn", 64, 10, seed=0).state_dict().items()}
    ck_d = net.store.put(to_safetensors(ck))
    for j in range(3):
        x = torch.randn(64, 64, generator=torch.Generator().manual_seed(j))
        batch = net.store.put(to_safetensors({"x": x}))
        spec = JobSpec("infer", (ck_d, batch), {"model": "cnn", "in_features": 64, "num_classes": 10}, seed=j)
        rep = net.coordinator.run(spec)
        assert rep.faulted == [] and len(rep.accepted) == 3


def test_fees_and_rewards_flow(tmp_path):
    net = make_net(tmp_path, ["honest"] * 3 + ["fake_result"], p=1.0)
    for j in range(6):
        before = {a: net.ledger.balance(a) for a in net.executors}
        rep = net.coordinator.run(net.agg_spec(j))
        for a in rep.accepted:  # the fee per accepted round, plus a share of any slash
            assert net.ledger.balance(a) - before[a] >= 10
            assert net.ledger.reputation(a, COMPUTE) > 0
        for a in rep.faulted:
            assert net.ledger.balance(a) == before[a]
    net.ledger.check_invariants()
