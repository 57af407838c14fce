"""The ``contribution_score`` kind with references: public data, previous global update, history."""

from __future__ import annotations

import pytest
import torch

from deai.learn.data import prepare
from deai.learn.models import build_model
from deai.learn.partition import partition
from deai.learn.scoring import HISTORY_WINDOW, SKETCH_DIM, Flag
from deai.learn.training import TrainConfig, get_flat, set_flat, train_many
from deai.protocol.jobs.errors import BadJobSpec, InputMismatch
from deai.protocol.jobs.kinds import get_kind
from deai.protocol.jobs.kinds.contribution_score import KIND, MAX_HISTORY_ROWS

MODEL = {"model": "logreg", "in_features": 64, "num_classes": 10}
RECIPE = {"epochs": 1, "lr": 0.05, "batch_size": 32}


@pytest.fixture(scope="module")
def rounds():
    torch.set_num_threads(1)
    sp = prepare("digits", val=0.15, test=0.2, seed=6)
    net = build_model("logreg", 64, 10, seed=0)
    parts = partition(sp.train.y, 8, "iid", seed=6)
    data = [sp.train.subset(p) for p in parts]
    cfg = TrainConfig(**RECIPE)
    base = get_flat(net)
    first, _ = train_many(net, base, data, cfg, list(range(8)))
    ckpt = {k: v.detach().clone() for k, v in net.state_dict().items()}
    return net, sp.val, data, cfg, base, first, ckpt


def _blob(v):
    return {"delta": v.clone()}


def test_references_flag_public_replay_and_stale_updates(rounds):
    net, val, data, cfg, base, first, ckpt = rounds
    kind = get_kind(KIND)
    params = {**MODEL, "method": "loo", "public": {**MODEL, "recipe": RECIPE}}
    vx = {"x": val.x, "y": val.y}
    # round 1: honest updates, no history
    out1 = kind.execute([ckpt, vx, vx, *(_blob(u) for u in first)], params, seed=5)
    assert out1["flags"].tolist() == [0] * 8 and out1["sketches"].shape == (8, SKETCH_DIM)
    assert out1["sketch_age"].tolist() == [0] * 8
    # round 2 from the next checkpoint: honest, a replay of round 1's update 3, the previous
    # global update re-sent, a public-data trainer (own seed), a zero update
    g1 = first.mean(0)
    set_flat(net, base + g1)
    ckpt2 = {k: v.detach().clone() for k, v in net.state_dict().items()}
    second, _ = train_many(net, base + g1, [*data, val], cfg, [100 + i for i in range(9)])
    set_flat(net, base)
    updates = [*second[:8], first[3], g1, second[8], torch.zeros_like(g1)]
    p2 = {**params, "previous": True, "history": True}
    inputs = [ckpt2, vx, vx, _blob(g1), out1, *(_blob(u) for u in updates)]
    out2 = kind.execute(inputs, p2, seed=6)
    flags = out2["flags"].tolist()
    assert flags == [0] * 8 + [Flag.REPLAY, Flag.STALE_GLOBAL, Flag.PUBLIC, Flag.ZERO]
    assert int(out2["source"][8]) == 3  # row 3 of the input history: round 1's provider 3
    assert out2["scores"][8:].tolist() == [0.0] * 4
    assert out2["sketch_age"].tolist() == [0] * 12 + [1] * 8
    assert out2["sketch_index"].tolist()[12:] == list(range(8))
    # deterministic: same inputs, same bits
    again = kind.execute(inputs, p2, seed=6)
    assert all(torch.equal(out2[k], again[k]) for k in out2)


def test_history_is_bounded_and_malformed_history_refused(rounds):
    _, val, _, _, _, first, ckpt = rounds
    kind = get_kind(KIND)
    params = {**MODEL, "method": "loo", "history": True}
    vx = {"x": val.x, "y": val.y}
    ups = [_blob(u) for u in first]

    def hist(h=4, k=SKETCH_DIM, age=0, dtype=torch.float32, fill=0.1):
        return {
            "sketches": torch.full((h, k), fill, dtype=dtype),
            "sketch_age": torch.full((h,), age, dtype=torch.int64),
            "sketch_index": torch.arange(h),
        }

    for bad in (
        hist(k=SKETCH_DIM + 1),
        hist(age=HISTORY_WINDOW),
        hist(age=-1),
        hist(dtype=torch.float64),
        hist(fill=float("nan")),
        {"sketches": torch.zeros(2, SKETCH_DIM)},
        hist(h=MAX_HISTORY_ROWS + 1),
    ):
        with pytest.raises(InputMismatch):
            kind.execute([ckpt, vx, bad, *ups], params, seed=1)
    # rows that reach the window's end are dropped
    out = kind.execute([ckpt, vx, hist(age=HISTORY_WINDOW - 1), *ups], params, seed=1)
    assert out["sketches"].shape == (8, SKETCH_DIM)
    out = kind.execute([ckpt, vx, hist(age=2), *ups], params, seed=1)
    assert out["sketch_age"].tolist() == [0] * 8 + [3] * 4
    with pytest.raises(BadJobSpec):
        kind.check_params({**params, "history": "yes"})
    with pytest.raises(BadJobSpec):
        kind.check_params({**params, "novelty": {"copy": 2.0}})
    with pytest.raises(BadJobSpec):
        kind.check_params({**params, "public": {**MODEL, "recipe": {"epochs": "x" * 100}}})
