"""The general training recipe: buffers in the state vector, seeded dropout, AdamW, schedules,
clipping, accumulation, the next-token objective, and the two paths of ``train_many``."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from deai.learn.aggregators import get_aggregator
from deai.learn.data import Dataset
from deai.learn.errors import DataError
from deai.learn.federated import aggregate_updates, local_step
from deai.learn.models import build_model
from deai.learn.objectives import evaluate, objective_for
from deai.learn.scoring.utility import ValidationUtility
from deai.learn.training import (
    TrainConfig,
    get_flat,
    local_train,
    lr_factor,
    set_flat,
    state_names,
    train_many,
    vectorizable,
)


def images(n: int = 64, seed: int = 0) -> Dataset:
    gen = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=gen)
    x = torch.rand(n, 1, 8, 8, generator=gen) + y.view(-1, 1, 1, 1).float() * 0.5
    return Dataset(x, y, 3, (1, 8, 8), "images")


def tokens(n: int = 48, t: int = 12, vocab: int = 11, seed: int = 0) -> Dataset:
    gen = torch.Generator().manual_seed(seed)
    start = torch.randint(0, vocab, (n, 1), generator=gen)
    windows = (start + torch.arange(t + 1)) % vocab  # a learnable pattern: next = current + 1
    return Dataset(windows[:, :-1], windows[:, 1:], vocab, (t,), "tokens")


class TinyLM(nn.Module):
    def __init__(self, vocab: int = 11, dim: int = 16, dropout: float = 0.1) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, dim)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(dim, vocab)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.drop(self.emb(x)))


def resnet() -> nn.Module:
    return build_model("resnet", 64, 3, seed=0, input_shape=[1, 8, 8], widths=[4, 8])


def test_batch_norm_statistics_are_in_the_state_vector_and_round_trip():
    model = resnet()
    names = state_names(model)
    assert any(n.endswith("running_mean") for n in names)
    assert not any(n.endswith("num_batches_tracked") for n in names)
    vec = get_flat(model)
    other = resnet()
    set_flat(other, vec + 1.0)
    assert torch.equal(get_flat(other), vec + 1.0)


def test_training_moves_batch_norm_statistics_and_a_negative_variance_is_clamped():
    model = resnet()
    before = get_flat(model)
    result = local_train(model, images(), TrainConfig(steps=3, batch_size=16), seed=1)
    bn = model.stem[1]
    assert not torch.equal(bn.running_mean, torch.zeros_like(bn.running_mean))
    assert result.delta.shape == before.shape
    set_flat(model, before - 100.0)
    assert bool((bn.running_var >= 0).all())


def test_dropout_is_seeded_and_leaves_the_global_rng_alone():
    config = TrainConfig(steps=5, batch_size=8, optimizer="adamw", lr=1e-2)
    runs = []
    for seed in (3, 3, 4):
        torch.manual_seed(123)
        model = TinyLM()
        state = torch.get_rng_state()
        runs.append(local_train(model, tokens(), config, seed=seed).delta)
        assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], runs[2])


def test_adamw_cosine_warmup_clipping_learns_next_tokens():
    torch.manual_seed(0)
    model = TinyLM(dropout=0.0)
    data = tokens()
    config = TrainConfig(
        steps=60,
        batch_size=16,
        optimizer="adamw",
        lr=0.05,
        weight_decay=0.01,
        grad_clip=1.0,
        schedule="cosine",
        warmup_steps=5,
    )
    before = evaluate(model, data)
    local_train(model, data, config, seed=0)
    after = evaluate(model, data)
    assert set(after) == {"accuracy", "loss", "perplexity"}
    assert after["loss"] < before["loss"] / 2
    assert math.isclose(after["perplexity"], math.exp(after["loss"]), rel_tol=1e-9)


def test_lr_schedules():
    cos = TrainConfig(schedule="cosine", warmup_steps=2)
    assert [round(lr_factor(cos, s, 10), 4) for s in (0, 1, 2)] == [0.5, 1.0, 1.0]
    assert lr_factor(cos, 10, 10) == pytest.approx(0.0)
    lin = TrainConfig(schedule="linear")
    assert lr_factor(lin, 5, 10) == pytest.approx(0.5)
    assert lr_factor(TrainConfig(), 7, 10) == 1.0


def test_gradient_accumulation_matches_one_larger_batch():
    data = images(64)
    a, b = build_model("mlp", 64, 3, seed=0), build_model("mlp", 64, 3, seed=0)
    big = local_train(a, data, TrainConfig(steps=4, batch_size=16, lr=0.1), seed=5)
    acc = local_train(b, data, TrainConfig(steps=4, batch_size=8, accumulate=2, lr=0.1), seed=5)
    assert torch.allclose(big.delta, acc.delta, atol=1e-6)


def test_train_many_takes_the_vectorized_path_only_where_it_applies_and_both_agree():
    mlp = build_model("mlp", 64, 3, seed=0)
    data = [images(40, s) for s in range(3)]
    plain = TrainConfig(steps=3, batch_size=8)
    assert vectorizable(mlp, plain, data)
    assert not vectorizable(resnet(), plain, data)
    assert not vectorizable(mlp, TrainConfig(optimizer="adamw"), data)
    assert not vectorizable(TinyLM(), plain, [tokens()])
    fast, _ = train_many(mlp, get_flat(mlp), data, plain, [1, 2, 3])
    one = [
        local_train(build_model("mlp", 64, 3, seed=0), d, plain, seed=s).delta
        for d, s in zip(data, [1, 2, 3], strict=True)
    ]
    assert torch.allclose(fast, torch.stack(one), atol=1e-5)
    # the sequential path is local_train exactly, and leaves the model it was given untouched
    net = resnet()
    start = get_flat(net)
    seq, _ = train_many(net, start, data, plain, [1, 2, 3])
    assert torch.equal(get_flat(net), start)
    ref = resnet()
    assert torch.equal(seq[1], local_train(ref, data[1], plain, seed=2).delta)


def test_a_resnet_round_aggregates_weights_and_batch_norm_statistics():
    net = resnet()
    start = get_flat(net)
    data = [images(32, s) for s in range(4)]
    step = local_step(net, start, data, TrainConfig(steps=2, batch_size=8), [0, 1, 2, 3])
    agg = aggregate_updates(get_aggregator("median"), step.sent)
    set_flat(net, start + agg)
    names = state_names(net)
    offsets = torch.tensor(
        [0] + [dict(net.named_buffers()).get(n, dict(net.named_parameters()).get(n)).numel() for n in names]
    ).cumsum(0)
    i = names.index("stem.1.running_mean")
    moved = agg[offsets[i] : offsets[i + 1]]
    assert bool((moved != 0).any())


def test_validation_utility_of_a_batch_norm_model_matches_evaluate():
    net = resnet()
    data = images(30, 9)
    util = ValidationUtility(net, data)
    vecs = torch.stack([get_flat(net), get_flat(net) * 0.5])
    got = util(vecs)
    set_flat(net, vecs[1])
    assert got[1] == pytest.approx(-evaluate(net, data)["loss"], rel=1e-5)
    assert util.evaluations == 2


def test_a_loss_that_does_not_fit_the_data_is_refused():
    with pytest.raises(DataError):
        objective_for(images(), "next_token")
    with pytest.raises(DataError):
        local_train(TinyLM(), tokens(), TrainConfig(loss="cross_entropy", steps=1), seed=0)


def test_device_auto_is_the_cpu_without_a_gpu_and_training_there_matches_cpu():
    from deai.learn.training import resolve_device

    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    with pytest.raises(ValueError):
        TrainConfig(device="tpu")
    config = TrainConfig(steps=3, batch_size=8)
    a, b = resnet(), resnet()
    on_cpu = local_train(a, images(), config, seed=2).delta
    auto = local_train(b, images(), TrainConfig(steps=3, batch_size=8, device="auto"), seed=2).delta
    assert auto.device.type == "cpu" and next(b.parameters()).device.type == "cpu"
    # on a GPU the bits differ (other kernels); the tolerance is the verification rule's
    assert torch.allclose(on_cpu, auto, atol=1e-4) if expected == "cuda" else torch.equal(on_cpu, auto)


def test_a_checkpoint_leaves_out_frozen_weights_under_every_name_they_have():
    from deai.learn.training import shared_state

    class Tied(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(10, 4)
            self.head = nn.Linear(4, 10, bias=False)
            self.head.weight = self.emb.weight  # tied, as in most language models
            self.adapter = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.adapter(self.emb(x)))

    model = Tied()
    model.emb.weight.requires_grad_(False)
    assert set(shared_state(model)) == {"adapter.weight", "adapter.bias"}
