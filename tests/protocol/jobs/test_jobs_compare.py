import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from deai.protocol.jobs.compare import CompareRule, agreement_classes, agrees, decide, max_deviation

TOL = CompareRule.tolerance(rtol=1e-5, atol=1e-6)


def out(*values):
    return {"y": torch.tensor(values, dtype=torch.float32)}


def test_values_straddling_a_rounding_boundary_agree():
    # On a 1e-4 grid these fall in different cells, so hashing rounded values would split two honest
    # results 2e-10 apart; the tolerance keeps them together.
    a = {"y": torch.tensor([0.12344999990], dtype=torch.float64)}
    b = {"y": torch.tensor([0.12345000010], dtype=torch.float64)}
    assert torch.round(a["y"] / 1e-4) != torch.round(b["y"] / 1e-4)
    assert agrees(a, b, TOL)
    assert not agrees(a, b, CompareRule.bit_exact())


@given(st.lists(st.floats(-1e3, 1e3, width=32), min_size=1, max_size=8), st.floats(-1e-3, 1e-3))
def test_agreement_is_symmetric(values, shift):
    a = out(*values)
    b = {"y": a["y"] + shift}
    assert agrees(a, b, TOL) == agrees(b, a, TOL)


def test_layout_and_integer_tensors_must_match():
    assert not agrees(out(1.0, 2.0), out(1.0), TOL)
    assert not agrees({"y": torch.tensor([1])}, {"y": torch.tensor([2])}, TOL)
    assert not agrees(out(1.0), {"z": torch.tensor([1.0])}, TOL)


def test_majority_decision_and_silent_executors():
    a, b = out(1.0, 2.0), out(1.0, 2.0 + 1e-7)
    bad = out(1.5, 2.0)
    d = decide([a, bad, b], TOL)
    assert d.winner == 0 and d.majority == (0, 2) and d.minority == (1,) and not d.unanimous
    # two silent out of three: one answer is no majority
    d = decide([a, None, None], TOL)
    assert d.winner is None and d.minority == (0, 1, 2)
    d = decide([a, None, b], TOL)
    assert d.winner == 0 and d.majority == (0, 2) and d.minority == (1,) and d.unanimous
    d = decide([a, bad], TOL)
    assert d.winner is None


def test_non_transitive_tolerance_uses_support():
    rule = CompareRule.tolerance(0.0, 1.0)
    x, y, z = out(0.0), out(0.9), out(1.8)  # x~y, y~z, not x~z
    assert agreement_classes([x, y, z], rule) == [[0, 1, 2]]
    d = decide([x, y, z], rule)
    assert d.winner == 1 and d.majority == (0, 1, 2)


def test_exact_rule_groups_by_digest():
    d = decide([out(1.0), out(1.0), out(1.0000001)], CompareRule.bit_exact())
    assert d.majority == (0, 1) and d.minority == (2,)


def test_max_deviation():
    assert max_deviation(out(1.0, 2.0), out(1.0, 2.5)) == pytest.approx((0.5, 0.2))


def test_rule_validation():
    with pytest.raises(ValueError):
        CompareRule.tolerance(-1, 0)
    with pytest.raises(ValueError):
        CompareRule(True, 1e-3, 0)
