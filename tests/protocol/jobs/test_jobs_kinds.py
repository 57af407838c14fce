import pytest
import torch

from deai.learn.aggregators import get_aggregator
from deai.learn.models import build_model
from deai.protocol.jobs.errors import BadJobSpec, InputMismatch, UnknownJobKind
from deai.protocol.jobs.kinds import StepProgram, get_kind, kind_names

P = {"model": "mlp", "in_features": 6, "num_classes": 3, "model_kwargs": {"hidden": [8]}}


def checkpoint():
    return {k: v.clone() for k, v in build_model("mlp", 6, 3, seed=1, hidden=[8]).state_dict().items()}


def data(n=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"x": torch.randn(n, 6, generator=g), "y": torch.randint(0, 3, (n,), generator=g)}


def test_registry():
    assert {"aggregate", "score", "infer", "train_steps"} <= set(kind_names())
    with pytest.raises(UnknownJobKind, match="known"):
        get_kind("nope")


@pytest.mark.parametrize("agg", ["median", "trimmed_mean", "krum"])
def test_aggregate_calls_the_learn_registry(agg):
    g = torch.Generator().manual_seed(0)
    ups = [{"w": torch.randn(3, 4, generator=g), "b": torch.randn(4, generator=g)} for _ in range(7)]
    out = get_kind("aggregate").execute(ups, {"aggregator": agg, "f": 1}, 0)
    assert {k: v.shape for k, v in out.items()} == {"w": (3, 4), "b": (4,)}
    stacked = torch.stack([torch.cat([u["w"].reshape(-1), u["b"]]) for u in ups])
    expect = get_aggregator(agg, f=1)(stacked)
    assert torch.equal(torch.cat([out["w"].reshape(-1), out["b"]]), expect)


def test_aggregate_refuses_mixed_layouts_and_bad_params():
    kind = get_kind("aggregate")
    with pytest.raises(InputMismatch, match="layout"):
        kind.execute([{"w": torch.zeros(3)}, {"w": torch.zeros(4)}], {"aggregator": "mean"}, 0)
    with pytest.raises(BadJobSpec, match="aggregator"):
        kind.execute([{"w": torch.zeros(3)}], {"aggregator": "no-such"}, 0)
    with pytest.raises(BadJobSpec, match="weights"):
        kind.execute([{"w": torch.zeros(3)}], {"aggregator": "mean", "weights": [-1]}, 0)


def test_aggregate_with_a_root_update_trains_on_the_root_data():
    from deai.learn.data import Dataset
    from deai.learn.training import TrainConfig, deterministic, get_flat, train_many

    ck, root_data = checkpoint(), data(30, seed=5)
    model = build_model("mlp", 6, 3, seed=1, hidden=[8])
    recipe = {"epochs": 1.0, "lr": 0.1, "batch_size": 8, "momentum": 0.0}
    with deterministic(1):
        g0, _ = train_many(
            model,
            get_flat(model),
            [Dataset(root_data["x"], root_data["y"], 3, (6,))],
            TrainConfig(**recipe),
            [4],
        )
    g = torch.Generator().manual_seed(1)
    honest = g0[0] + 0.01 * torch.randn(7, g0.shape[1], generator=g)
    ups = [{"delta": row} for row in torch.cat([-honest[:2], honest[2:]])]  # two sign-flipped rows
    params = {"aggregator": "root_gate+centered_clipping", "f": 2, "root": {**P, "recipe": recipe}}
    kind = get_kind("aggregate")
    out = kind.execute([ck, root_data, *ups], params, 4)
    agg = get_aggregator("root_gate+centered_clipping", f=2)
    expect = agg(torch.stack([u["delta"] for u in ups]), root_update=g0[0])
    assert agg.kept.tolist() == [2, 3, 4, 5, 6]
    assert torch.equal(out["delta"], expect)
    with pytest.raises(InputMismatch, match="labels"):
        kind.execute([ck, {"x": root_data["x"], "y": root_data["y"] + 3}, *ups], params, 4)
    with pytest.raises(InputMismatch, match="root data x"):
        kind.execute([ck, {"x": root_data["x"][:, :5], "y": root_data["y"]}, *ups], params, 4)
    with pytest.raises(InputMismatch, match="model has"):
        kind.execute([ck, root_data, {"delta": torch.zeros(3)}] * 1, params, 4)
    with pytest.raises(BadJobSpec, match="lr"):
        kind.execute([ck, root_data, *ups], {**params, "root": {**P, "recipe": {**recipe, "lr": -1}}}, 4)
    with pytest.raises(InputMismatch, match="root update"):  # no root: refused, never a crash
        kind.execute(ups, {"aggregator": "root_gate+centered_clipping", "f": 2}, 4)


def test_infer_is_the_models_forward_pass():
    ck, batch = checkpoint(), data(5)
    out = get_kind("infer").execute([ck, {"x": batch["x"]}], P, 0)
    model = build_model("mlp", 6, 3, seed=1, hidden=[8])
    assert torch.equal(out["logits"], model(batch["x"]).detach())
    with pytest.raises(InputMismatch, match="batch x"):
        get_kind("infer").execute([ck, {"x": torch.zeros(5, 7)}], P, 0)
    with pytest.raises(InputMismatch, match="does not fit"):
        get_kind("infer").execute([{"net.0.weight": torch.zeros(8, 6)}, {"x": batch["x"]}], P, 0)
    with pytest.raises(BadJobSpec, match=r"params\.model"):
        get_kind("infer").execute([ck, {"x": batch["x"]}], {**P, "model": "os:system"}, 0)


def test_score_is_loss_improvement_per_update():
    ck, val = checkpoint(), data(60)
    d = sum(v.numel() for v in ck.values())
    helpful = StepProgram.from_job([ck, val], {**P, "steps": 20, "lr": 0.5, "batch_size": 60}, 0)
    trained = helpful.run(helpful.initial)
    delta = torch.cat([(trained[k] - ck[k]).reshape(-1) for k in ck])
    ups = [{"delta": delta}, {"delta": torch.zeros(d)}, {k: -10 * (trained[k] - ck[k]) for k in ck}]
    out = get_kind("score").execute([ck, val, *ups], P, 0)
    assert out["scores"][0] > 0 and out["scores"][1] == 0 and out["scores"][2] < 0
    with pytest.raises(InputMismatch, match="update 0"):
        get_kind("score").execute([ck, val, {"delta": torch.zeros(d + 1)}], P, 0)


def test_train_steps_is_deterministic_and_stepwise():
    ck, train = checkpoint(), data(50)
    params = {**P, "steps": 12, "lr": 0.1, "batch_size": 8}
    a = get_kind("train_steps").execute([ck, train], params, 7)
    b = get_kind("train_steps").execute([ck, train], params, 7)
    c = get_kind("train_steps").execute([ck, train], params, 8)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)
    program = StepProgram.from_job([ck, train], params, 7)
    mid = program.run(program.initial, 0, 5)
    end = program.run(mid, 5)
    assert all(torch.equal(a[k], end[k]) for k in a)
    with pytest.raises(InputMismatch, match="labels"):
        get_kind("train_steps").execute([ck, {"x": train["x"], "y": train["y"] + 5}], params, 0)
    with pytest.raises(BadJobSpec, match="steps"):
        get_kind("train_steps").execute([ck, train], {**params, "steps": 0}, 0)


def test_kinds_leave_the_global_rng_alone():
    torch.manual_seed(123)
    expect = torch.rand(3)
    torch.manual_seed(123)
    get_kind("aggregate").execute([{"w": torch.zeros(3)}] * 5, {"aggregator": "bucketing+median", "f": 1}, 9)
    assert torch.equal(torch.rand(3), expect)
