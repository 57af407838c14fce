import struct

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from deai.core.errors import TensorError
from deai.core.tensorio import FlatSpec, flatten, from_safetensors, tensor_digest, to_safetensors, unflatten

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.int8, torch.bool]


@st.composite
def state_dicts(draw):
    n = draw(st.integers(1, 4))
    out = {}
    for i in range(n):
        shape = tuple(draw(st.lists(st.integers(0, 4), max_size=3)))
        dtype = draw(st.sampled_from(DTYPES))
        seed = draw(st.integers(0, 2**31))
        g = torch.Generator().manual_seed(seed)
        t = torch.randn(shape, generator=g) * 100
        out[f"layer{i}.w"] = t.to(dtype) if dtype != torch.bool else t > 0
    return out


@settings(max_examples=60, deadline=None)
@given(state_dicts())
def test_safetensors_round_trip_is_bit_exact(state):
    back = from_safetensors(to_safetensors(state), expected=FlatSpec.of(state).expected())
    assert set(back) == set(state)
    for k in state:
        assert back[k].dtype == state[k].dtype and torch.equal(back[k], state[k])
    assert tensor_digest(back) == tensor_digest(state)


def test_model_state_dict_round_trip_and_flatten():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2))
    sd = model.state_dict()
    vec, spec = flatten(sd)
    assert vec.shape == (spec.size,) and vec.dtype == torch.float32
    back = unflatten(vec, spec)
    assert tensor_digest(back) == tensor_digest(sd)
    assert FlatSpec.from_json(spec.to_json()) == spec
    model.load_state_dict(back)
    with pytest.raises(TensorError, match="spec needs"):
        unflatten(vec[:-1], spec)


def test_digest_detects_any_change():
    state = {"a": torch.zeros(10), "b": torch.ones(3, dtype=torch.int64)}
    base = tensor_digest(state)
    assert tensor_digest({"b": state["b"], "a": state["a"]}) == base  # order independent
    changed = {"a": state["a"].clone(), "b": state["b"]}
    changed["a"][3] = 1e-30
    assert tensor_digest(changed) != base
    assert tensor_digest({"a": state["a"].double(), "b": state["b"]}) != base
    assert tensor_digest({"a": state["a"].reshape(2, 5), "b": state["b"]}) != base
    assert tensor_digest({"c": state["a"], "b": state["b"]}) != base


def test_untrusted_bytes_are_checked():
    good = to_safetensors({"w": torch.ones(2, 2)})
    with pytest.raises(TensorError, match="too short"):
        from_safetensors(b"abc")
    with pytest.raises(TensorError, match="impossible"):
        from_safetensors(struct.pack("<Q", 10**12) + b"{}")
    with pytest.raises(TensorError, match="not JSON"):
        from_safetensors(struct.pack("<Q", 4) + b"\xff\xfe{}")
    with pytest.raises(TensorError):
        from_safetensors(good[:-3])
    with pytest.raises(TensorError, match="over the limit"):
        from_safetensors(good, max_bytes=10)
    with pytest.raises(TensorError, match="shape"):
        from_safetensors(good, expected={"w": ((4,), torch.float32)})
    with pytest.raises(TensorError, match="dtype"):
        from_safetensors(good, expected={"w": ((2, 2), torch.float64)})
    with pytest.raises(TensorError, match="names differ"):
        from_safetensors(good, expected={"v": ((2, 2), torch.float32)})
    with pytest.raises(TensorError, match="non-finite"):
        from_safetensors(to_safetensors({"w": torch.tensor([1.0, float("nan")])}))
    assert (
        from_safetensors(to_safetensors({"w": torch.tensor([np.inf])}), require_finite=False)["w"]
        .isinf()
        .all()
    )
