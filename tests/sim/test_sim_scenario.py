import pytest

from deai.sim.scenario import ScenarioError, load_scenario, parse_scenario


def test_minimal_scenario_gets_documented_defaults():
    s = parse_scenario({"seed": 3})
    assert s.seed == 3 and s.dataset.name == "digits" and s.task.dp is None
    assert s.network.transport == "memory" and s.task.verification.redundancy == 3


@pytest.mark.parametrize(
    "doc, key, value",
    [
        ({"seed": 1, "task": {"rounds": -3}}, "task.rounds", "-3"),
        ({"seed": 1, "task": {"bogus": 1}}, "task.bogus", "1"),
        ({"seed": 1, "network": {"transport": "tcp"}}, "network.transport", "'tcp'"),
        ({"seed": 1, "dataset": {"name": "imagenet"}}, "dataset.name", "'imagenet'"),
        ({"seed": 1, "partition": {"kind": "dirichlet", "alpha": 0}}, "partition.alpha", "0"),
        ({"seed": 1, "task": {"dp": {"clip": 1.0}}}, "task.dp", "dict"),
        ({"seed": 1, "adversaries": [{"role": "miner", "behaviour": "x"}]}, "adversaries.0.role", "'miner'"),
        ({"task": {}}, "seed", "dict"),
    ],
)
def test_bad_keys_are_named_with_their_values(doc, key, value):
    with pytest.raises(ScenarioError) as err:
        parse_scenario(doc)
    assert f"{key}:" in str(err.value) and value in str(err.value)


def test_more_adversaries_than_participants_is_refused():
    doc = {
        "seed": 1,
        "network": {"hosts": 1},
        "adversaries": [{"role": "host", "behaviour": "wrong", "count": 2}],
    }
    with pytest.raises(ScenarioError, match="only 1"):
        parse_scenario(doc)


def test_load_from_yaml_file(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("seed: 5\ntask:\n  rounds: 2\n  dp: {epsilon: 3.0, clip: 1.0}\n")
    s = load_scenario(p)
    assert s.task.rounds == 2 and s.task.dp.epsilon == 3.0
    p.write_text("seed: [unclosed\n")
    with pytest.raises(ScenarioError, match="not valid YAML"):
        load_scenario(p)
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(tmp_path / "missing.yaml")
    p.write_text("- 1\n- 2\n")
    with pytest.raises(ScenarioError, match="mapping"):
        load_scenario(p)


@pytest.mark.parametrize(
    "doc, key",
    [
        ({"seed": 1, "task": {"aggregator": "nnm+krumm"}}, "task.aggregator"),
        ({"seed": 1, "task": {"strategy": "fedsgd9"}}, "task.strategy"),
        ({"seed": 1, "task": {"scoring": "vibes"}}, "task.scoring"),
        (
            {"seed": 1, "adversaries": [{"role": "data_provider", "behaviour": "teleport"}]},
            "adversaries.0.behaviour",
        ),
        (
            {"seed": 1, "adversaries": [{"role": "compute_provider", "behaviour": "label_flip"}]},
            "adversaries.0",
        ),
    ],
)
def test_names_are_checked_against_the_registries(doc, key):
    with pytest.raises(ScenarioError) as err:
        parse_scenario(doc)
    assert key in str(err.value)


def test_known_names_pass():
    s = parse_scenario(
        {
            "seed": 1,
            "task": {"aggregator": "nnm+centered_clipping", "strategy": "fedavg"},
            "adversaries": [
                {"role": "data_provider", "behaviour": "alie", "count": 1},
                {"role": "compute_provider", "behaviour": "fake_result", "count": 1},
            ],
        }
    )
    assert s.adversaries[1].behaviour == "fake_result"


def test_the_scorer_reaches_the_task_spec():
    from deai.sim.plan import NetworkPlan

    plan = NetworkPlan.from_scenario(parse_scenario({"seed": 1, "task": {"scoring": "loo"}}))
    assert plan.bundle.spec.scoring == "loo"
