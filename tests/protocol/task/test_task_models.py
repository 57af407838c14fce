"""Task models of every family at the protocol's edges: a spec, checkpoint, update or data that does
not fit the task's model is refused with a clear error, and an oversized model or dataset is
refused before any work starts."""

from __future__ import annotations

import pytest
import torch

from deai.core.tensorio import to_safetensors
from deai.learn.data import Dataset
from deai.learn.models import build_model
from deai.learn.training import get_flat
from deai.protocol.task.errors import BadTaskSpec, BadUpdate
from deai.protocol.task.model import (
    MAX_UPDATE_BYTES,
    checkpoint_bytes,
    data_bytes,
    load_checkpoint,
    load_update,
    param_count,
    parse_data,
)
from deai.protocol.task.spec import MAX_PARAMS, TaskSpec

Z = "0" * 64


def spec(**kw) -> TaskSpec:
    base = dict(init=Z, validation=Z, in_features=784, num_classes=10, model="resnet")
    base["model_kwargs"] = {"input_shape": [1, 28, 28], "widths": [4, 8]}
    return TaskSpec(**{**base, **kw})


def test_the_state_vector_of_a_batch_norm_model_is_what_an_update_carries():
    s = spec()
    model = build_model("resnet", 784, 10, seed=0, **s.model_kwargs)
    assert param_count(s) == get_flat(model).numel() > sum(p.numel() for p in model.parameters())
    loaded = load_checkpoint(s, checkpoint_bytes(model))
    assert torch.equal(get_flat(loaded), get_flat(model))


def test_a_checkpoint_of_another_layout_is_refused_naming_what_differs():
    other = build_model("resnet", 784, 10, seed=0, input_shape=[1, 28, 28], widths=[4, 16])
    with pytest.raises(BadUpdate, match=r"does not fit the task.s model.*wrong"):
        load_checkpoint(spec(), checkpoint_bytes(other))
    no_stats = {k: v for k, v in other.state_dict().items() if "running" not in k}
    with pytest.raises(BadUpdate, match="missing"):
        load_checkpoint(spec(), to_safetensors(no_stats))


def test_an_update_of_another_length_is_refused():
    d = param_count(spec())
    with pytest.raises(BadUpdate):
        load_update(to_safetensors({"delta": torch.zeros(d - 1)}), d)
    with pytest.raises(BadUpdate):
        load_update(to_safetensors({"delta": torch.full((d,), float("nan"))}), d)


def test_validation_data_must_fit_the_model():
    images = Dataset(torch.rand(4, 1, 28, 28), torch.arange(4), 10, (1, 28, 28))
    assert parse_data(data_bytes(images), 784, 10).x.shape == (4, 1, 28, 28)
    with pytest.raises(BadUpdate, match="of 64 features"):
        parse_data(data_bytes(images), 64, 10)
    windows = torch.randint(0, 256, (3, 17))
    tokens = Dataset(windows[:, :-1], windows[:, 1:], 256, (16,))
    assert parse_data(data_bytes(tokens), 32, 256).is_tokens
    with pytest.raises(BadUpdate, match="T <= 8"):
        parse_data(data_bytes(tokens), 8, 256)  # longer windows than the model's context
    with pytest.raises(BadUpdate, match="refused"):
        parse_data(data_bytes(tokens), 32, 100)  # ids beyond the vocabulary


def test_an_oversized_model_is_refused_by_the_spec_before_anything_is_built():
    with pytest.raises(BadTaskSpec, match="over the limit"):
        spec(model="gpt", in_features=128, num_classes=256, model_kwargs={"n_embd": 4096, "n_layer": 4})
    with pytest.raises(BadTaskSpec, match="model 'gpt'"):
        spec(model="gpt", in_features=128, num_classes=256, model_kwargs={"n_embd": 100, "n_head": 3})
    assert MAX_PARAMS == 1 << 24


def test_an_oversized_dataset_is_refused_before_it_is_parsed():
    big = b"\x00" * (MAX_UPDATE_BYTES + 1)
    with pytest.raises(BadUpdate):
        parse_data(big, 784, 10)


def test_the_recipe_is_checked_and_reaches_the_learn_layer():
    s = spec(optimizer="adamw", grad_clip=1.0, schedule="cosine", warmup_steps=2, accumulate=2, local_steps=5)
    config = s.train_config()
    assert (config.optimizer, config.steps, config.accumulate, config.schedule) == ("adamw", 5, 2, "cosine")
    for bad in ({"optimizer": "lion"}, {"schedule": "step"}, {"loss": "mse"}, {"accumulate": 0}):
        with pytest.raises(BadTaskSpec):
            spec(**bad)
