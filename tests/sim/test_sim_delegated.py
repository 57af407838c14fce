"""Delegated training as a network feature: a task whose rounds are refereed ``train_steps`` jobs
on drawn compute providers over the creator's data. Honest providers: every round accepted, nobody
slashed, no dispute. A cheating trainer drawn with an honest one: a dispute (bisection over the
committed hashes, the divergent segment re-executed by the coordinator), the cheater slashed for a
wrong result and the honest one paid. The scenario keys are validated like the others."""

import os
from pathlib import Path

import pytest
import yaml

from deai.protocol.task.errors import BadTaskSpec
from deai.protocol.task.spec import DelegatedSettings, TaskSpec
from deai.sim.report import write_report
from deai.sim.runner import run_scenario
from deai.sim.scenario import ScenarioError, parse_scenario

ROOT = Path(__file__).resolve().parents[2]
SMALL = os.environ.get("DEAI_SMALL") == "1"


def doc(**over) -> dict:
    d = yaml.safe_load((ROOT / "scenarios" / "delegated.yaml").read_text())
    d.pop("small")
    d["task"] = {**d["task"], "rounds": 2, "delegated": {"steps": 16, "commit_every": 2, "p": 1.0, "r": 2}}
    d["inference"] = {**d["inference"], "requests": 2}
    for k, v in over.items():
        d[k] = {**d[k], **v} if isinstance(v, dict) else v
    return d


def run(d: dict, tmp_path: Path, transport: str = "memory") -> dict:
    report = run_scenario(parse_scenario(d), tmp_path, transport=transport)
    write_report(report, tmp_path)
    return report


def computes(report: dict) -> dict[str, dict]:
    return {p["address"]: p for p in report["participants"] if p["role"] == "compute_provider"}


def test_delegated_settings_are_checked_and_a_federated_spec_is_unchanged():
    base = dict(init="a" * 64, validation="b" * 64, in_features=4, num_classes=2)
    fed = TaskSpec(**base)
    assert "delegated" not in fed.to_json() and fed.training == "federated"
    spec = TaskSpec(**base, delegated={"data": "c" * 64, "steps": 8, "commit_every": 2})
    assert spec.training == "delegated" and isinstance(spec.delegated, DelegatedSettings)
    assert TaskSpec.from_json(spec.to_json()) == spec and spec.task_id != fed.task_id
    for bad in (
        {"data": "c" * 64, "steps": 8, "commit_every": 9},
        {"data": "c" * 64, "steps": 1000, "commit_every": 1},  # too many kept states
        {"data": "c" * 64, "r": 1},
        {"data": "nope"},
        {"data": "c" * 64, "extra": 1},
    ):
        with pytest.raises(BadTaskSpec):
            TaskSpec(**base, delegated=bad)


def test_scenario_keys_are_validated():
    parse_scenario(doc())
    with pytest.raises(ScenarioError, match=r"task\.training"):
        parse_scenario(doc(task={"training": "remote"}))
    with pytest.raises(ScenarioError, match="commit_every"):
        parse_scenario(doc(task={"delegated": {"steps": 4, "commit_every": 8}}))
    with pytest.raises(ScenarioError, match="compute_providers must exceed"):
        parse_scenario(doc(network={"compute_providers": 2}))
    with pytest.raises(ScenarioError, match="unknown compute_provider behaviour"):
        parse_scenario(doc(adversaries=[{"role": "compute_provider", "behaviour": "skip_step"}]))


def test_an_honest_delegated_task_is_accepted_and_nobody_is_slashed(tmp_path):
    report = run(doc(adversaries=[]), tmp_path)
    assert report["ledger_verified"], report["ledger_problem"]
    assert report["rounds_completed"] == 2 and report["model"]
    assert all(r["defense"] == "refereed delegation" and r["disputes"] == [] for r in report["rounds"])
    assert all(p["slashed"] == 0 for p in report["participants"])
    assert sum(p["earned"] for p in computes(report).values()) > 0  # the trainers were paid
    assert report["test_accuracy"] > 0.5  # digits, 10 classes: trained, not at chance


def test_a_cheating_trainer_is_caught_in_a_dispute_and_slashed(tmp_path):
    # three compute providers, one skipping steps, r = 2: it is drawn in most rounds (seeded)
    report = run(doc(network={"compute_providers": 3}, task={"rounds": 3}), tmp_path)
    assert report["ledger_verified"], report["ledger_problem"]
    people = computes(report)
    cheater = next(a for a, p in people.items() if p["behaviour"] == "skip_steps")
    disputes = [d for r in report["rounds"] for d in r["disputes"]]
    assert disputes, "the cheater was never drawn with an honest trainer: change the seed"
    for d in disputes:
        assert d["liars"] == [cheater] and cheater not in d["winners"] and d["winners"]
        assert d["rounds"] >= 1 and d["steps_reexecuted"] >= 1 and d["step"] is not None
        assert d["referee"] not in d["parties"]
    assert people[cheater]["slashed"] > 0
    assert any("wrong result" in r for r in people[cheater]["slash_reasons"])
    assert all(p["slashed"] == 0 for a, p in people.items() if a != cheater)


@pytest.mark.slow
def test_a_delegated_task_over_http(tmp_path):
    d = doc(network={"compute_providers": 3, "transport": "http"})
    if not SMALL:
        d["task"] = {
            **d["task"],
            "rounds": 3,
            "delegated": {"steps": 64, "commit_every": 4, "p": 1.0, "r": 2},
        }
    report = run(d, tmp_path, transport="http")
    assert report["ledger_verified"], report["ledger_problem"]
    assert report["rounds_completed"] == d["task"]["rounds"]
    people = computes(report)
    cheater = next(a for a, p in people.items() if p["behaviour"] == "skip_steps")
    assert all(p["slashed"] == 0 for a, p in people.items() if a != cheater)
    disputes = [x for r in report["rounds"] for x in r["disputes"]]
    assert all(x["liars"] == [cheater] for x in disputes)
    assert (people[cheater]["slashed"] > 0) == bool(disputes)
