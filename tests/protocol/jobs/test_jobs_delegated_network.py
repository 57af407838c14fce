"""What delegated training needs over the network from ``train_steps``: ``keep_states`` outputs
carry every inner leaf's state (hashing to its committed leaf), ``segment`` re-executes exactly one
segment of the schedule, and both are bounded and checked."""

import pytest
import torch

from deai.core.tensorio import to_safetensors
from deai.learn.models import build_model
from deai.learn.training import shared_state
from deai.protocol.jobs import JobSpec
from deai.protocol.jobs.errors import BadJobSpec
from deai.protocol.jobs.kinds import get_kind
from deai.protocol.jobs.kinds.base import load_inputs
from deai.protocol.jobs.kinds.train_steps import StepProgram
from deai.protocol.jobs.trajectory import HASHES, MAX_KEPT_LEAVES, hashes_of, leaf_state, state_hash

MLP = {"model": "mlp", "in_features": 6, "num_classes": 3, "model_kwargs": {}}


def mlp_job(store, **params):
    g = torch.Generator().manual_seed(0)
    ck = shared_state(build_model("mlp", 6, 3, seed=0))
    data = {"x": torch.randn(40, 6, generator=g), "y": torch.randint(0, 3, (40,), generator=g)}
    inputs = (store.put(to_safetensors(ck)), store.put(to_safetensors(data)))
    return JobSpec("train_steps", inputs, {**MLP, "steps": 10, "lr": 0.1, "batch_size": 8, **params}, seed=3)


def test_keep_states_outputs_every_inner_leaf_state_hashing_to_its_leaf(store):
    spec = mlp_job(store, commit_every=3, keep_states=True)
    kind = get_kind("train_steps")
    inputs = load_inputs(store, spec)
    layout = kind.output_layout(inputs, spec.params)
    out = kind.execute(inputs, spec.params, spec.seed)
    assert set(out) == set(layout)
    hashes = hashes_of(out)  # leaves 0, 3, 6, 9, 10
    names = [k for k in out if k != HASHES and not k.startswith("leaf/")]
    for leaf in range(1, len(hashes)):
        state = leaf_state(out, leaf, names)
        assert state is not None and state_hash(state) == hashes[leaf]
    assert leaf_state(out, 0, names) is None  # leaf 0 is the job's checkpoint, not carried
    program = StepProgram.from_job(inputs, spec.params, spec.seed)
    plain = kind.execute(inputs, {k: v for k, v in spec.params.items() if k != "keep_states"}, spec.seed)
    assert hashes_of(plain) == hashes and not any(k.startswith("leaf/") for k in plain)
    assert state_hash(program.run(program.initial)) == hashes[-1]


def test_a_segment_job_reexecutes_exactly_that_segment(store):
    spec = mlp_job(store, segment=[3, 6])
    inputs = load_inputs(store, spec)
    out = get_kind("train_steps").execute(inputs, spec.params, spec.seed)
    program = StepProgram.from_job(inputs, spec.params, spec.seed)
    assert state_hash(out) == state_hash(program.run(program.initial, 3, 6))
    assert state_hash(out) != state_hash(program.run(program.initial, 0, 3))


@pytest.mark.parametrize(
    "params",
    [
        {"keep_states": True},  # needs commit_every
        {"commit_every": 2, "keep_states": 1},
        {"segment": [5, 5]},
        {"segment": [0, 11]},
        {"segment": [0, 2], "commit_every": 2},
        {"segment": "0:2"},
    ],
)
def test_bad_delegation_params_are_refused(store, params):
    with pytest.raises(BadJobSpec):
        get_kind("train_steps").check_params({**MLP, "steps": 10, "lr": 0.1, "batch_size": 8, **params})


def test_keep_states_is_bounded():
    steps = MAX_KEPT_LEAVES  # leaves 0..steps: one too many with commit_every 1
    with pytest.raises(BadJobSpec, match="at most"):
        get_kind("train_steps").check_params(
            {**MLP, "steps": steps, "lr": 0.1, "batch_size": 8, "commit_every": 1, "keep_states": True}
        )


def test_a_saved_refereed_run_comes_back_as_one(store):
    from deai.protocol.jobs.delegated import DisputeRecord, RefereedRun, run_from_json
    from deai.protocol.jobs.run import JobRun

    spec = mlp_job(store, commit_every=2, keep_states=True)
    run = RefereedRun(spec, "train", by_resolver=True, p=0.5)
    run.disputes.append(DisputeRecord("0x" + "11" * 32, ["a", "b"], ["a"], ["b"], 3, 2, 2, "c", [], "why"))
    back = run_from_json(run.to_json())
    assert isinstance(back, RefereedRun) and back.by_resolver and back.disputes == run.disputes
    assert type(run_from_json(JobRun(spec, "score").to_json())) is JobRun
