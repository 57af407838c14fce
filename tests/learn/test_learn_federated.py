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
