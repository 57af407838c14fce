"""``aggregator: default``: the recommended defense by name, sized for the round's rows."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from deai.learn.aggregators import (
    AGGREGATORS,
    DEFAULT_RULE,
    Default,
    default_f,
    describe_default,
    get_aggregator,
    needs_root_update,
)
from deai.learn.errors import AssumptionViolated


def rows_and_root(n: int = 12, d: int = 50, flipped: int = 3, seed: int = 0):
    """``n`` noisy copies of a direction ``g0``, the first ``flipped`` of them sign-flipped."""
    g = torch.Generator().manual_seed(seed)
    g0 = torch.randn(d, generator=g)
    x = g0 + 0.5 * torch.randn(n, d, generator=g)
    x[:flipped] = -3 * x[:flipped]
    return x, g0


def test_the_name_resolves_and_needs_the_root_update():
    agg = get_aggregator("default", f=3)
    assert isinstance(agg, Default) and agg.f == 3
    assert "default" in AGGREGATORS.names()
    assert needs_root_update(agg)
    assert needs_root_update(get_aggregator("default"))
    x, _ = rows_and_root()
    with pytest.raises(AssumptionViolated, match="root update"):
        agg(x)


@pytest.mark.parametrize("n", range(1, 60))
def test_f_derivation(n):
    f = default_f(n, 0)
    assert 3 * f < n  # the composed rule's limit
    assert f == min(-(-n // 4), (n - 1) // 3)
    assert 4 * f >= n or f == (n - 1) // 3  # a quarter of the rows, rounded up, unless capped
    assert default_f(n, 1) == 1  # a declared f is used as is
    get_aggregator("default").check(n, 0)  # a derived f is never refused


def test_f_derivation_examples_and_refusals():
    assert [default_f(n, 0) for n in (1, 3, 4, 5, 8, 12, 20, 100)] == [0, 0, 1, 1, 2, 3, 5, 25]
    with pytest.raises(ValueError):
        default_f(0, 0)
    with pytest.raises(ValueError):
        default_f(5, -1)
    with pytest.raises(AssumptionViolated, match="n=12, f=4"):
        get_aggregator("default", f=4)(*rows_and_root(12)[:1], root_update=rows_and_root(12)[1])


def test_the_f_used_comes_from_the_rows_of_each_call():
    agg = get_aggregator("default")
    for n, expect in ((12, 3), (20, 5), (5, 1)):
        x, g0 = rows_and_root(n, flipped=expect)
        agg(x, root_update=g0)
        assert agg.f_used == expect
        # the gate dropped exactly the flipped rows
        assert agg.kept is not None and agg.kept.tolist() == list(range(expect, n))


def test_describe_default():
    text = describe_default(12, 3, secure_aggregation=False, dp_mode=None)
    assert text.startswith("root_gate+centered_clipping (f=3 of 12 updates")
    assert "f=3 of 12" in describe_default(12, 0, secure_aggregation=False, dp_mode=None)
    assert "f=5 of 20" in describe_default(20, 0, secure_aggregation=False, dp_mode=None)
    sec = describe_default(4, 0, secure_aggregation=True, dp_mode=None)
    assert "f=1 of 4 bucket means" in sec and "secure-aggregation" in sec
    assert "local DP" in describe_default(12, 0, secure_aggregation=False, dp_mode="local")
    central = describe_default(12, 0, secure_aggregation=False, dp_mode="central")
    assert central.startswith("dp_aggregate") and "noise" in central
    assert "refused" in describe_default(12, 4, secure_aggregation=False, dp_mode=None)


def test_it_is_the_composed_rule_and_deterministic():
    x, g0 = rows_and_root(13, flipped=3)
    out = [get_aggregator("default")(x, root_update=g0) for _ in range(2)]
    assert torch.equal(out[0], out[1])
    explicit = get_aggregator(DEFAULT_RULE, f=default_f(13, 0))(x, root_update=g0)
    assert torch.equal(out[0], explicit)
    # the centre carries over between calls, and reset() forgets it
    agg = get_aggregator("default")
    first = agg(x, root_update=g0)
    assert not torch.equal(agg(x, root_update=g0), first)
    agg.reset()
    assert torch.equal(agg(x, root_update=g0), first)


def test_the_root_row_and_the_wider_radius():
    # a huge row aligned with g0 passes the gate; the clipping bounds it
    x, g0 = rows_and_root(12, flipped=0)
    x[0] = 1e4 * g0
    out = get_aggregator("default")(x, root_update=g0)
    assert float(out.norm()) < 2 * float(x[1:].norm(dim=1).max())
    # rows whose norms lie within 0.8-1.3 x each other are not clipped (a first call starts from a
    # zero centre): the rule is then the plain mean of the kept rows and g0; a median radius would
    # clip the larger half
    g = torch.Generator().manual_seed(3)
    root = torch.full((40,), 1 / 40**0.5)
    y = torch.randn(12, 40, generator=g) + 2 * root
    y = y / y.norm(dim=1, keepdim=True) * torch.linspace(0.8, 1.3, 12)[:, None]
    out = get_aggregator("default")(y, root_update=root)
    assert torch.allclose(out, torch.cat([y, root[None]]).mean(0), atol=1e-6)
    median_radius = get_aggregator("root_gate(root_row=True)+centered_clipping", f=3)(y, root_update=root)
    assert not torch.allclose(median_radius, out, atol=1e-3)


def test_it_holds_under_shards_with_sign_flippers():
    from deai.learn.data import prepare
    from deai.learn.federated import run_federated
    from deai.learn.partition import partition
    from deai.learn.training import TrainConfig, deterministic

    splits = prepare("digits", seed=0)
    idx = partition(splits.train.y, 12, "shards", seed=0, classes_per_provider=2)
    parts = [splits.train.subset(i) for i in idx]
    byz = sorted(np.random.default_rng(0).choice(12, 3, replace=False).tolist())
    root = splits.val.subset(range(100))
    local = TrainConfig(epochs=1.0, batch_size=32, lr=0.2)

    def run(aggregator, attack, providers=parts):
        with deterministic():
            return run_federated(
                providers,
                splits.test,
                rounds=6,
                local=local,
                aggregator=aggregator,
                f=0,
                byzantine=byz if attack else [],
                attack=attack,
                root_data=root,
                seed=0,
            ).accuracy

    # With shards the sign flippers' classes are lost to any rule over the honest rows, so the
    # reference is the honest providers alone, averaged (no attacker, no defense).
    honest_only = run("mean", None, [p for i, p in enumerate(parts) if i not in byz])
    attacked = run("default", "sign_flip")
    undefended = run("mean", "sign_flip")
    assert attacked >= honest_only - 0.01
    assert attacked > undefended + 0.1


def test_it_runs_through_the_aggregate_job_with_a_root_update():
    from deai.learn.data import Dataset
    from deai.learn.models import build_model
    from deai.learn.training import TrainConfig, deterministic, get_flat, train_many
    from deai.protocol.jobs.kinds import get_kind
    from deai.protocol.task.jobspecs import needs_root

    assert needs_root(SimpleNamespace(aggregator="default", f=0))  # type: ignore[arg-type]
    P = {"model": "mlp", "in_features": 6, "num_classes": 3, "model_kwargs": {"hidden": [8]}}
    model = build_model("mlp", 6, 3, seed=1, hidden=[8])
    ck = {k: v.clone() for k, v in model.state_dict().items()}
    g = torch.Generator().manual_seed(5)
    root_data = {"x": torch.randn(30, 6, generator=g), "y": torch.randint(0, 3, (30,), generator=g)}
    recipe = {"epochs": 1.0, "lr": 0.1, "batch_size": 8, "momentum": 0.0}
    with deterministic(1):
        g0, _ = train_many(
            model,
            get_flat(model),
            [Dataset(root_data["x"], root_data["y"], 3, (6,))],
            TrainConfig(**recipe),
            [4],
        )
    honest = g0[0] + 0.01 * torch.randn(8, g0.shape[1], generator=g)
    ups = [{"delta": row} for row in torch.cat([-honest[:2], honest[2:]])]  # two sign-flipped rows
    params = {"aggregator": "default", "f": 0, "root": {**P, "recipe": recipe}}
    out = get_kind("aggregate").execute([ck, root_data, *ups], params, 4)
    agg = get_aggregator("default")
    expect = agg(torch.stack([u["delta"] for u in ups]), root_update=g0[0])
    assert agg.f_used == 2 and agg.kept is not None and agg.kept.tolist() == [2, 3, 4, 5, 6, 7]
    assert torch.equal(out["delta"], expect)


@pytest.mark.parametrize("chunk", [1, 7, 64])
def test_update_files_give_the_same_bits_as_the_stacked_tensor(tmp_path, chunk):
    from deai.core.tensorio import TensorFile, to_safetensors
    from deai.learn.aggregators import FileRows, TensorRows

    x, g0 = rows_and_root(9, d=50, flipped=2, seed=4)
    files = []
    for i, row in enumerate(x):
        path = tmp_path / f"u{i}.safetensors"
        path.write_bytes(to_safetensors({"delta": row.clone()}))
        files.append(TensorFile.open(path))
    try:
        from_files = get_aggregator("default")(FileRows(files, chunk=chunk), root_update=g0)
    finally:
        for fh in files:
            fh.close()
    in_memory = get_aggregator("default")(TensorRows(x, chunk=chunk), root_update=g0)
    assert torch.equal(from_files, in_memory)
