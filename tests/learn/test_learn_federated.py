import pytest
import torch

from deai.learn.aggregators import get_aggregator
from deai.learn.data import prepare
from deai.learn.federated import run_federated
from deai.learn.partition import partition
from deai.learn.training import TrainConfig, deterministic


@pytest.fixture(scope="module")
def setup():
    s = prepare("digits", seed=0)
    parts = [s.train.subset(i) for i in partition(s.train.y, 10, "iid", seed=0)]
    return s, parts


LOCAL = TrainConfig(epochs=1, batch_size=16, lr=0.1)


def test_fedavg_learns_and_is_deterministic(setup):
    s, parts = setup
    with deterministic():
        a = run_federated(parts, s.test, rounds=8, local=LOCAL, seed=1, eval_every=4)
        b = run_federated(parts, s.test, rounds=8, local=LOCAL, seed=1)
    assert torch.equal(a.global_vec, b.global_vec)
    assert a.accuracy > 0.85
    assert [h["round"] for h in a.history] == [4, 8]


def test_mean_collapses_and_median_holds_under_noise(setup):
    s, parts = setup
    kw = {"rounds": 6, "local": LOCAL, "byzantine": [0, 1, 2], "attack": "gaussian_noise", "seed": 0}
    with deterministic():
        mean = run_federated(parts, s.test, aggregator="mean", f=0, **kw)
        med = run_federated(parts, s.test, aggregator="median", **kw)
    assert med.accuracy > 0.8
    assert mean.accuracy < med.accuracy - 0.2


def test_refusal_is_reported_not_run(setup):
    s, parts = setup
    byz = [0, 1, 2, 3]
    res = run_federated(parts, s.test, rounds=3, local=LOCAL, aggregator="krum", byzantine=byz, attack="alie")
    assert res.refused and "n >= 2f + 3" in res.refused


def test_backdoor_success_is_measured_and_fltrust_needs_root(setup):
    s, parts = setup
    with deterministic():
        res = run_federated(
            parts, s.test, rounds=4, local=LOCAL, f=0, byzantine=[0, 1, 2], attack="backdoor(boost=2.0)"
        )
    assert res.backdoor_success is not None and 0.0 <= res.backdoor_success <= 1.0
    for spec in ("fltrust", "root_gate+centered_clipping"):
        with pytest.raises(ValueError, match="root_data"):
            run_federated(parts, s.test, rounds=1, aggregator=spec, byzantine=[0], attack="ipm")
    agg = get_aggregator("nnm+fltrust", f=1)
    with deterministic():
        ok = run_federated(
            parts, s.test, rounds=3, local=LOCAL, aggregator=agg, byzantine=[0], attack="ipm", root_data=s.val
        )
    assert ok.accuracy > 0.5


def test_strategies_and_momentum_run(setup):
    s, parts = setup
    for strategy in ("fedprox", "fedadam", "fedyogi", "diloco"):
        with deterministic():
            res = run_federated(parts, s.test, rounds=3, local=LOCAL, strategy=strategy, client_momentum=0.5)
        assert res.accuracy > 0.3, strategy


def test_round_steps_compose_to_one_round(setup):
    from deai.learn.attacks import get_attack
    from deai.learn.federated import Collusion, aggregate_updates, local_step, server_step
    from deai.learn.models import build_model
    from deai.learn.strategies import get_strategy
    from deai.learn.training import get_flat, train_many

    _, parts = setup
    net = build_model("mlp", 64, 10, seed=0)
    start = get_flat(net)
    clones = Collusion(get_attack("sybil_clones(poison=None)"), [1, 3], torch.Generator().manual_seed(0))
    with deterministic():
        step = local_step(net, start, parts[:4], LOCAL, [5, 6, 7, 8], collusions=[clones])
        trained, _ = train_many(net, start, parts[:4], LOCAL, [5, 6, 7, 8])
        zero = torch.zeros_like(trained)
        again = local_step(net, start, parts[:4], LOCAL, [5, 6, 7, 8], momentum=zero, beta=0.5)
    assert torch.equal(step.sent[[0, 2]], trained[[0, 2]])  # honest rows: their own training
    assert torch.equal(step.sent[1], trained[1]) and torch.equal(step.sent[3], trained[1])  # one clone
    assert step.momentum is None and torch.equal(again.sent, again.momentum)
    assert torch.allclose(again.sent, 0.5 * trained)  # 0.5 m + 0.5 delta with m = 0
    with pytest.raises(ValueError, match="distinct rows"):
        local_step(net, start, parts[:4], LOCAL, [5, 6, 7, 8], collusions=[clones, clones])
    # the server step keeps no hidden state: stopping and resuming from its returned state is the same
    agg = aggregate_updates(get_aggregator("mean"), step.sent)
    fedadam = get_strategy("fedadam")
    one = server_step(fedadam, start, agg)
    two = server_step(fedadam, one.global_vec, agg, one.state)
    fresh = get_strategy("fedadam")
    fresh(start, agg)
    assert set(one.state) == {"m", "v"} and torch.equal(two.global_vec, fresh(one.global_vec, agg))
