"""One preprocessing for simulated and real providers, declared in the task; the join grace; the
exported folder is enough to rebuild and run the model; a model at chance is reported as such."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from deai.learn.errors import DataError, ModelError
from deai.learn.export import read_export
from deai.learn.preprocess import Preprocessing
from deai.protocol.task.errors import BadTaskSpec
from deai.protocol.task.model import data_bytes
from deai.protocol.task.provider import ProviderPool
from deai.protocol.task.spec import TaskSpec
from deai.sim.plan import NetworkPlan
from deai.sim.runner import _chance, run_scenario
from deai.sim.scenario import parse_scenario

SMALL = os.environ.get("DEAI_SMALL") == "1"


def scenario(**task) -> dict:
    return {
        "seed": 3,
        "dataset": {"name": "digits"},
        "model": {"name": "mlp"},
        "network": {"data_providers": 4, "compute_providers": 2, "hosts": 0},
        "task": {"rounds": 3, "local_epochs": 2, "lr": 0.2, "aggregator": "mean", "budget": 12_000, **task},
        "inference": {"requests": 0},
    }


def test_providers_hold_raw_data_and_the_task_declares_its_preprocessing():
    plan = NetworkPlan.from_scenario(parse_scenario(scenario()))
    spec = plan.bundle.spec
    prep = spec.preprocessing
    assert prep.kind == "standardize" and len(prep.mean) == spec.in_features == 64
    assert plan.raw_splits is not None
    raw = next(iter(plan.datasets.values()))
    assert float(raw.x.max()) == 16.0  # digits' raw pixel counts, not standardized
    # the statistics are the creator's: fitted on the validation split it holds
    assert prep == Preprocessing.fit(plan.raw_splits.val)
    # the published validation data is in model space: the raw validation data through it
    val_raw = plan.raw_splits.val
    assert torch.allclose(plan.splits.val.x, prep.apply(val_raw).x)
    # a provider's pool puts its raw data through the spec's preprocessing
    pool = ProviderPool(plan.providers, plan.datasets)
    a = plan.providers[0].address
    model_data = pool.model_data(spec, a)
    assert model_data is not None
    assert torch.allclose(model_data.x, prep.apply(plan.datasets[a]).x)
    assert abs(float(model_data.x.mean())) < 0.5


def test_the_spec_digest_covers_the_preprocessing_and_bad_statistics_are_refused():
    plan = NetworkPlan.from_scenario(parse_scenario(scenario()))
    spec = plan.bundle.spec
    doc = spec.to_json()
    assert doc["preprocessing"]["kind"] == "standardize"
    assert TaskSpec.from_bytes(spec.to_bytes(), task_id=spec.task_id) == spec
    shifted = dict(doc, preprocessing={**doc["preprocessing"], "mean": [0.0] * 64})
    assert TaskSpec.from_json(shifted).task_id != spec.task_id
    bad = [
        {"kind": "standardize", "mean": [0.0] * 5, "std": [1.0] * 5},  # 5 groups do not divide 64
        {"kind": "standardize", "mean": [0.0], "std": [0.0]},
        {"kind": "standardize", "mean": [float("nan")], "std": [1.0]},
        {"kind": "standardize", "mean": [1e300], "std": [1.0]},
        {"kind": "standardize", "mean": [0.0], "std": [1.0, 2.0]},
        {"kind": "none", "mean": [1.0], "std": [1.0]},
        {"kind": "whiten", "mean": [], "std": []},
        {"kind": "standardize", "mean": ["0"], "std": [1.0]},
        {"kind": "standardize", "mean": [0.0], "std": [1.0], "extra": 1},
    ]
    for p in bad:
        with pytest.raises(BadTaskSpec, match="preprocessing"):
            TaskSpec.from_json(dict(doc, preprocessing=p))


def test_statistics_per_channel_or_one_scale_for_all():
    images = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).reshape(2, 3, 2, 2)
    per_channel = Preprocessing("standardize", [0.0, 100.0, 200.0], [1.0, 2.0, 4.0])
    out = per_channel.transform(images)
    assert torch.equal(out[:, 1], (images[:, 1] - 100) / 2)
    assert torch.equal(out[:, 2], (images[:, 2] - 200) / 4)
    bytes_to_unit = Preprocessing("standardize", [0.0], [255.0])
    assert torch.allclose(bytes_to_unit.transform(torch.full((1, 4), 255.0)), torch.ones(1, 4))
    with pytest.raises(DataError, match="divide"):
        per_channel.transform(torch.zeros(1, 4))


def test_a_provider_whose_data_does_not_fit_the_task_sits_it_out():
    plan = NetworkPlan.from_scenario(parse_scenario(scenario()))
    a = plan.providers[0]
    wrong = plan.datasets[a.address]
    wrong = type(wrong)(wrong.x[:, :32].contiguous(), wrong.y, wrong.num_classes, (32,), "wrong")
    pool = ProviderPool([a], {a.address: wrong})
    ckpt = plan.bundle.init
    assert pool.train(plan.bundle.spec, 1, ckpt, [a.address], 1) == []


def test_a_model_at_chance_is_reported_as_such():
    plan = NetworkPlan.from_scenario(parse_scenario(scenario()))
    chance, warnings = _chance(plan, 0.09)
    assert chance is not None and 0.09 < chance < 0.2
    assert warnings and "at chance" in warnings[0] and "preprocessing" in warnings[0]
    assert _chance(plan, 0.9) == (chance, [])


def test_the_join_grace_starts_a_task_short_of_providers_without_waiting_the_window(tmp_path):
    """Two of four providers exist: with the grace the first round starts seconds after they
    joined instead of at the end of the 120 s join window, the same way on every run."""
    ends = []
    for i, grace in enumerate((10_000, 10_000, 0)):
        doc = scenario(min_providers=2, windows={"join_grace_ms": grace}, rounds=1)
        plan = NetworkPlan.from_scenario(parse_scenario(doc))
        plan.providers = plan.providers[:2]  # the other two never come
        net = plan.memory(tmp_path / f"run{i}")
        task = net.submit(plan.creator, plan.bundle)
        start = net.clock.now
        net.run(lambda t=task, n=net: n.status(t).round >= 1)
        ends.append(net.clock.now - start)
        net.run(net.task_done(task))
        status = net.status(task)
        assert status.phase.value == "done" and len(status.history[0].contributors) == 2
        ends.append(status.checkpoint)
    grace_start, grace_ckpt, again_start, again_ckpt, wait_start, _ = ends
    assert grace_start < 30_000 <= 120_000 <= wait_start
    assert (grace_start, grace_ckpt) == (again_start, again_ckpt)  # same seed, same run


def test_the_exported_folder_alone_rebuilds_and_runs_the_model(tmp_path):
    report = run_scenario(parse_scenario(scenario(rounds=2)), tmp_path)
    folder = Path(report["exported"])
    described = read_export(folder)
    assert described.model == "mlp" and described.in_features == 64 and described.feature_shape == (1, 8, 8)
    assert described.preprocessing.kind == "standardize"
    assert report["preprocessing"] == "standardize" and report["warnings"] == []
    plan = NetworkPlan.from_scenario(parse_scenario(scenario(rounds=2)))
    assert plan.raw_splits is not None
    raw_test = plan.raw_splits.test
    np.save(tmp_path / "x.npy", raw_test.x.numpy())
    # a fresh interpreter with nothing but the folder and raw inputs
    code = (
        "import sys, json, numpy as np, torch\n"
        "from deai.learn.export import load_exported, read_export\n"
        "d = read_export(sys.argv[1]); m = load_exported(sys.argv[1])\n"
        "x = torch.as_tensor(np.load(sys.argv[2]))\n"
        "with torch.no_grad(): y = m(d.preprocessing.transform(x)).argmax(-1)\n"
        "print(json.dumps(y.tolist()))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(folder), str(tmp_path / "x.npy")],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    predicted = torch.tensor(json.loads(out.stdout))
    accuracy = int((predicted == raw_test.y).sum()) / len(raw_test)
    assert accuracy == pytest.approx(report["test_accuracy"], abs=1e-6)  # the same answers
    assert accuracy > 0.8


@pytest.mark.slow
def test_real_providers_with_raw_npz_files_match_the_simulated_run(tmp_path):
    """Over HTTP each provider daemon reads its raw ``ADDRESS.npz`` and applies the task's
    preprocessing itself: the run ends on the memory run's model (and accuracy), not at chance."""
    doc = scenario(rounds=2 if SMALL else 3)
    http = run_scenario(parse_scenario(doc), tmp_path / "http", transport="http")
    memory = run_scenario(parse_scenario(doc), tmp_path / "memory", transport="memory")
    files = sorted((tmp_path / "http" / "network").rglob("0x*.npz"))
    assert len(files) == 4
    with np.load(files[0], allow_pickle=False) as z:
        assert float(z["x"].max()) == 16.0  # raw pixel counts on disk
    assert http["test_accuracy"] > 0.8 and http["warnings"] == []
    assert http["test_accuracy"] == pytest.approx(memory["test_accuracy"], abs=0.03)


def test_validation_blob_is_the_creator_s_data_in_model_space():
    plan = NetworkPlan.from_scenario(parse_scenario(scenario(scoring_holdout=0.0)))
    assert plan.bundle.validation == data_bytes(plan.splits.val)


def test_max_providers_caps_the_roster_and_later_joiners_sit_the_task_out(tmp_path):
    report = run_scenario(parse_scenario(scenario(rounds=1, min_providers=2, max_providers=2)), tmp_path)
    assert report["rounds"][0]["providers"] == 2
    providers = [p for p in report["participants"] if p["role"] == "data_provider"]
    assert sum(p["earned"] > 0 for p in providers) <= 2
    assert all(p["slashed"] == 0 for p in providers)


def test_a_spec_too_large_to_parse_is_refused_when_written():
    plan = NetworkPlan.from_scenario(parse_scenario(scenario()))
    doc = plan.bundle.spec.to_json()
    many = {"kind": "standardize", "mean": [0.123456789] * 8192, "std": [1.5] * 8192}
    with pytest.raises(BadTaskSpec, match="over the limit"):
        TaskSpec.from_json(dict(doc, in_features=8192, model="logreg", preprocessing=many))


def test_a_hugging_face_export_carries_the_description_beside_it(tmp_path):
    from deai.learn.export import ExportSpec, export_model
    from deai.learn.models import build_model

    kwargs = {"n_embd": 16, "n_layer": 1, "n_head": 2}
    model = build_model("gpt", 8, 260, seed=0, **kwargs)
    folder = export_model(model, tmp_path / "gpt", spec=ExportSpec("gpt", 8, 260, kwargs, feature_shape=(8,)))
    assert (folder / "config.json").is_file() and (folder / "deai.json").is_file()
    described = read_export(folder)
    assert (described.model, described.in_features, described.model_kwargs) == ("gpt", 8, kwargs)
    assert described.preprocessing == Preprocessing() and described.feature_shape == (8,)
    bad = json.loads((folder / "deai.json").read_text())
    bad["preprocessing"] = {"kind": "standardize", "mean": [float("nan")], "std": [1.0]}
    (folder / "deai.json").write_text(json.dumps(bad))
    with pytest.raises(ModelError, match="finite"):
        read_export(folder)


def test_provider_momentum_averages_each_provider_s_updates_across_rounds():
    plan = NetworkPlan.from_scenario(parse_scenario(scenario(provider_momentum=0.5)))
    spec, ckpt = plan.bundle.spec, plan.bundle.init
    assert spec.provider_momentum == 0.5
    who = [a.address for a in plan.providers[:2]]
    pool = ProviderPool(plan.providers[:2], plan.datasets)
    first = {u.provider: u.delta for u in pool.train(spec, 1, ckpt, who, 2)}
    second = {u.provider: u.delta for u in pool.train(spec, 2, ckpt, who, 2)}
    fresh = ProviderPool(plan.providers[:2], plan.datasets)  # no momentum held: the raw update
    raw = {u.provider: u.delta for u in fresh.train(spec, 2, ckpt, who, 2)}
    for a in who:
        assert torch.allclose(second[a], 0.5 * first[a] + 0.5 * raw[a], atol=1e-6)
        assert not torch.allclose(second[a], raw[a])


def test_a_provider_file_of_byte_pixels_is_read_as_features_and_scaled_by_the_task(tmp_path):
    from deai.node.participant.provider import load_npz

    pixels = np.random.default_rng(0).integers(0, 256, size=(6, 1, 4, 4), dtype=np.uint8)
    np.savez(tmp_path / "a.npz", x=pixels, y=np.arange(6) % 2)
    data = load_npz(tmp_path / "a.npz", 2)
    assert not data.is_tokens and data.feature_shape == (1, 4, 4)
    scaled = Preprocessing("standardize", [0.0], [255.0]).apply(data)
    assert torch.allclose(scaled.x, torch.as_tensor(pixels, dtype=torch.float32) / 255)
    windows = np.arange(12).reshape(3, 4)
    np.savez(tmp_path / "t.npz", x=windows, y=windows + 1)
    assert load_npz(tmp_path / "t.npz", 20).is_tokens
