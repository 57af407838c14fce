import pytest
import torch
from torch import nn

from deai.learn.data import Dataset, prepare
from deai.learn.errors import ModelError, UnknownName
from deai.learn.models import MODELS, build_model
from deai.learn.training import (
    TrainConfig,
    batch_schedule,
    deterministic,
    evaluate,
    get_flat,
    local_train,
    set_flat,
    train_many,
)


class TinyUserModel(nn.Module):
    def __init__(self, in_features, num_classes, width=3):
        super().__init__()
        self.lin = nn.Linear(in_features, num_classes)
        self.width = width

    def forward(self, x):
        return self.lin(x)


@pytest.fixture(scope="module")
def digits():
    return prepare("digits", seed=0)


@pytest.mark.parametrize("name", ["mlp", "cnn", "logreg", "test_learn_models_training:TinyUserModel"])
def test_models_build_and_run(name):
    m = build_model(name, 64, 10, seed=0)
    assert m(torch.randn(5, 64)).shape == (5, 10)
    assert torch.equal(get_flat(m), get_flat(build_model(name, 64, 10, seed=0)))
    assert not torch.equal(get_flat(m), get_flat(build_model(name, 64, 10, seed=1)))
    assert not list(m.buffers())


def test_model_options_and_errors():
    assert build_model("mlp", 8, 3, hidden=(4, 5))(torch.randn(2, 8)).shape == (2, 3)
    assert build_model("cnn", 3 * 4 * 4, 2, input_shape=(3, 4, 4))(torch.randn(2, 48)).shape == (2, 2)
    assert build_model("test_learn_models_training:TinyUserModel", 4, 2, width=7).width == 7
    with pytest.raises(ModelError, match="square"):
        build_model("cnn", 13, 2)
    with pytest.raises(ModelError, match="cannot import"):
        build_model("no.such.module:Net", 4, 2)
    with pytest.raises(ModelError, match=r"not a torch\.nn\.Module"):
        build_model("torch:tensor", 4, 2)
    with pytest.raises(ModelError, match="cannot build"):
        build_model("mlp", 4, 2, depth=3)
    with pytest.raises(UnknownName, match="unknown model"):
        build_model("resnet9000", 4, 2)
    assert {"mlp", "cnn", "logreg"} <= set(MODELS.names())


def test_flat_roundtrip():
    m = build_model("cnn", 64, 10, seed=0)
    v = torch.randn(get_flat(m).numel())
    set_flat(m, v)
    assert torch.equal(get_flat(m), v)
    with pytest.raises(ValueError, match="needs"):
        set_flat(m, v[:-1])


def test_batch_schedule_visits_each_sample_once_per_epoch():
    sched = batch_schedule(10, 5, 4, torch.Generator().manual_seed(0))
    assert sched.shape == (5, 4)
    flat = sched.flatten()
    assert sorted(flat[:10].tolist()) == list(range(10))  # epoch 1 is a permutation
    assert batch_schedule(3, 2, 8, torch.Generator().manual_seed(0)).shape == (2, 3)  # batch capped at N


def test_local_training_is_deterministic_and_learns(digits):
    cfg = TrainConfig(epochs=3, batch_size=32, lr=0.1, momentum=0.9)
    results = []
    for _ in range(2):
        m = build_model("mlp", 64, 10, seed=0)
        with deterministic():
            results.append(local_train(m, digits.train, cfg, seed=5))
        acc = evaluate(m, digits.test)["accuracy"]
    assert torch.equal(results[0].delta, results[1].delta)  # same seed, same bits
    assert results[0].delta.dtype == torch.float32 and results[0].num_samples == len(digits.train)
    assert acc > 0.9
    m = build_model("mlp", 64, 10, seed=0)
    with deterministic():
        other = local_train(m, digits.train, cfg, seed=6)
    assert not torch.equal(other.delta, results[0].delta)


def test_prox_term_pulls_towards_the_start(digits):
    part = digits.train.subset(range(200))
    norms = []
    for mu in (0.0, 10.0):
        m = build_model("mlp", 64, 10, seed=0)
        norms.append(
            float(local_train(m, part, TrainConfig(epochs=5, lr=0.05, prox_mu=mu), seed=1).delta.norm())
        )
    assert norms[1] < 0.7 * norms[0]


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_train_many_matches_local_train(digits, name):
    parts = [digits.train.subset(range(i * 50, i * 50 + 20 + 15 * i)) for i in range(4)]
    cfg = TrainConfig(epochs=2, batch_size=16, lr=0.1, momentum=0.5, weight_decay=1e-3, prox_mu=0.1)
    start = get_flat(build_model(name, 64, 10, seed=2))
    with deterministic():
        deltas, losses = train_many(build_model(name, 64, 10, seed=2), start, parts, cfg, [1, 2, 3, 4])
        for i, p in enumerate(parts):
            m = build_model(name, 64, 10, seed=2)
            r = local_train(m, p, cfg, seed=i + 1)
            assert torch.allclose(deltas[i], r.delta, atol=1e-5), i
            assert abs(float(losses[i]) - r.loss) < 1e-4


def test_evaluate_by_hand():
    data = Dataset(torch.eye(3), torch.tensor([0, 1, 1]), 3, (3,))
    m = build_model("logreg", 3, 3)
    with torch.no_grad():
        m.linear.weight.copy_(torch.eye(3) * 10)
        m.linear.bias.zero_()
    out = evaluate(m, data)
    assert out["accuracy"] == pytest.approx(2 / 3)
