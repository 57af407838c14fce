"""The one registry style: a decorator on the class, names unique, unknown names listed, and importing
a package registers every member (no side-effect import needed elsewhere)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from deai.core.registry import Registry


class Unknown(LookupError):
    pass


def test_register_aliases_stamp_and_lookup():
    reg: Registry[object] = Registry("widget", Unknown, stamp="name")

    @reg.register("Round", "circle")
    class Round:
        pass

    assert Round.name == "round"  # the first name, folded
    assert reg.get("ROUND") is Round and reg.get("circle") is Round
    assert "Circle" in reg and "square" not in reg and 3 not in reg
    assert reg.names() == ["circle", "round"]


def test_duplicate_and_unknown_names_are_refused():
    reg: Registry[object] = Registry("widget", Unknown)
    reg.register("a")(object)
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("b", "A")(dict)
    assert reg.names() == ["a"]  # a refused registration adds none of its names
    with pytest.raises(Unknown, match="unknown widget 'z'; known: a"):
        reg.get("z")


def test_case_sensitive_registry():
    reg: Registry[object] = Registry("kind", Unknown, fold_case=False)
    reg.register("infer")(object)
    assert "infer" in reg and "Infer" not in reg
    with pytest.raises(Unknown):
        reg.get("INFER")


def test_importing_each_package_registers_all_its_members():
    """In a fresh interpreter, importing only the registry's package knows every member -- the
    kinds a network task uses, the hosts' wrong_answer behaviour, every aggregator stage."""
    code = """
from deai.protocol.jobs.kinds import KINDS
from deai.protocol.jobs.cheaters import CHEATERS
from deai.learn.aggregators import AGGREGATORS, PRE_AGGREGATORS
from deai.learn.attacks import ATTACKS
from deai.learn.scoring import SCORERS
from deai.learn.strategies import STRATEGIES
print(sorted(KINDS.names()), sorted(CHEATERS.names()), len(AGGREGATORS.names()),
      PRE_AGGREGATORS.names(), len(ATTACKS.names()), SCORERS.names(), len(STRATEGIES.names()))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    kinds = ["aggregate", "contribution_score", "dp_aggregate", "infer", "score", "train_steps"]
    cheaters = [
        "colluding", "copycat", "fake_result", "fewer_epochs", "forged_state", "late_revealer", "lazy",
        "lazy_copy", "other_data", "skip_steps", "stale_checkpoint", "wrong_answer",
    ]  # fmt: skip
    expected = f"{kinds} {cheaters} 17 ['bucketing', 'nnm', 'root_gate'] 9 ['gtg_shapley', 'loo', 'roni'] 5"
    assert out.strip() == expected
