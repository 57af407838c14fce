"""The aggregate job streams its update inputs: same result as loading them, refusals without a crash."""

import os

import pytest
import torch

from deai.core.accounts import Account
from deai.core.blobs import BlobStore
from deai.core.tensorio import from_safetensors, to_safetensors
from deai.learn.aggregators import CHUNK
from deai.protocol.jobs.errors import InputMismatch
from deai.protocol.jobs.executor import Executor
from deai.protocol.jobs.kinds import get_kind, load_inputs
from deai.protocol.jobs.kinds.base import LazyInput, close_inputs
from deai.protocol.jobs.spec import JobSpec


@pytest.fixture
def store(tmp_path):
    return BlobStore(tmp_path / "blobs", fsync=False)


def _executor(store):
    return Executor(Account.from_seed("streaming-executor", 0), store)


def _spec(store, updates, aggregator="median", f=1, **params):
    inputs = tuple(store.put(to_safetensors(u)) for u in updates)
    return JobSpec("aggregate", inputs, {"aggregator": aggregator, "f": f, **params}, seed=3)


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize(("aggregator", "f"), [("mean", 0), ("median", 1), ("multi_krum", 1)])
def test_streamed_job_equals_the_loaded_one_across_chunks(store, aggregator, f):
    # d spans two blocks, so the streamed reductions cross a block boundary
    gen = torch.Generator().manual_seed(0)
    updates = [{"delta": torch.randn(CHUNK + 999, generator=gen)} for _ in range(5)]
    weights = {"weights": [1, 2, 3, 4, 5]} if aggregator == "mean" else {}
    spec = _spec(store, updates, aggregator, f, **weights)
    fds = _open_fds()
    streamed = _executor(store).compute(spec)
    assert _open_fds() == fds  # the executor closed the update files
    loaded = get_kind("aggregate").execute(load_inputs(store, spec), spec.params, spec.seed)
    assert torch.equal(streamed["delta"], loaded["delta"])


def test_lazy_inputs_are_opened_not_loaded(store):
    spec = _spec(store, [{"delta": torch.randn(64)} for _ in range(4)])
    inputs = load_inputs(store, spec, lazy=True)
    try:
        assert all(isinstance(u, LazyInput) and u["delta"].is_meta for u in inputs)
        assert get_kind("aggregate").output_layout(inputs, spec.params) == {"delta": ((64,), torch.float32)}
    finally:
        close_inputs(inputs)


def test_multi_tensor_updates_flatten_in_one_order(store):
    gen = torch.Generator().manual_seed(1)
    updates = [
        {"w": torch.randn(4, 3, generator=gen), "b": torch.randn(3, generator=gen), "n": torch.tensor([i])}
        for i in range(5)
    ]
    spec = _spec(store, updates, "median", 1)
    out = _executor(store).compute(spec)
    for name in ("w", "b"):
        expected = torch.stack([u[name] for u in updates]).median(0).values
        assert torch.equal(out[name], expected), name
    assert out["n"].tolist() == [2.0]


def test_refusals_name_the_input_and_do_not_crash(store, tmp_path):
    good = [{"delta": torch.randn(40)} for _ in range(4)]
    ex = _executor(store)
    fds = _open_fds()

    # not safetensors at all
    spec = _spec(store, good)
    garbage = store.put(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    bad = JobSpec("aggregate", (*spec.inputs[:2], garbage, spec.inputs[3]), spec.params, seed=3)
    with pytest.raises(InputMismatch, match=r"input 2 \("):
        ex.compute(bad)

    # a NaN deep in one update: refused while reading, naming that input
    poisoned = [dict(u) for u in good]
    poisoned[3] = {"delta": good[3]["delta"].clone()}
    poisoned[3]["delta"][33] = float("nan")
    with pytest.raises(InputMismatch, match=r"input 3 \(.*non-finite"):
        ex.compute(_spec(store, poisoned))

    # another layout than update 0
    odd = [*good[:3], {"delta": torch.randn(41)}]
    with pytest.raises(InputMismatch, match="update 3 has another layout"):
        ex.compute(_spec(store, odd))

    # over the size bound (checked before anything is opened)
    spec = _spec(store, good)
    with pytest.raises(InputMismatch, match="exceeds 100 bytes"):
        load_inputs(store, spec, lazy=True, max_bytes=100)

    # corrupted on disk after it was stored: the streamed hash check refuses it
    spec = _spec(store, [{"delta": torch.full((40,), float(i))} for i in range(4)])
    path = store.path(spec.inputs[1])
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(InputMismatch, match=r"input 1 \(.*corrupted"):
        ex.compute(spec)

    assert _open_fds() == fds  # every refusal closed what it had opened


def test_root_update_path_still_streams_the_updates(store):
    kind = get_kind("aggregate")
    params = {"aggregator": "mean", "root": {"model": "mlp", "in_features": 4, "num_classes": 2}}
    assert kind.streamed_inputs(params, 6) == range(2, 6)
    assert kind.streamed_inputs({"aggregator": "mean"}, 3) == range(0, 3)
    # loaded eagerly (lazy=False), the kind still takes plain tensors
    spec = _spec(store, [{"delta": torch.ones(8) * i} for i in range(3)], "mean", 0)
    out = kind.execute(load_inputs(store, spec), spec.params, spec.seed)
    assert torch.equal(out["delta"], torch.ones(8))
    assert from_safetensors(to_safetensors(out))["delta"].dtype == torch.float32
