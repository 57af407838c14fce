from pathlib import Path

import pytest

from deai.sim.scenario import load_scenario

SCENARIOS = sorted((Path(__file__).resolve().parents[2] / "scenarios").glob("*.yaml"))


def test_the_bundle_is_complete():
    names = {p.stem for p in SCENARIOS}
    assert {"demo", "clean", "byzantine", "cheating_compute", "private"} <= names


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_bundled_scenarios_validate(path):
    scenario = load_scenario(path)
    assert scenario.name == path.stem
