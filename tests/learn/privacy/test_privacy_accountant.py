"""Our accountant reports Opacus's own figures for the same parameters."""

import pytest
from opacus.accountants import PRVAccountant, RDPAccountant
from opacus.accountants.utils import get_noise_multiplier

from deai.learn.privacy import BudgetExceeded, PrivacyAccountant, PrivacyError, noise_multiplier_for


@pytest.mark.parametrize(("mechanism", "cls"), [("rdp", RDPAccountant), ("prv", PRVAccountant)])
@pytest.mark.parametrize(("z", "q", "rounds"), [(1.1, 0.01, 40), (0.8, 0.1, 12), (2.0, 1.0, 4)])
def test_epsilon_after_every_round_matches_opacus(mechanism, cls, z, q, rounds):
    ours = PrivacyAccountant(delta=1e-5, mechanism=mechanism)
    theirs = cls()
    for r in range(1, rounds + 1):
        report = ours.step(noise_multiplier=z, sample_rate=q)
        theirs.step(noise_multiplier=z, sample_rate=q)
        if r in (1, rounds // 2, rounds):
            assert report.round == r
            assert report.epsilon == pytest.approx(theirs.get_epsilon(delta=1e-5), rel=1e-9)
    assert len(ours.history) == rounds
    assert all(a.epsilon <= b.epsilon for a, b in zip(ours.history, ours.history[1:], strict=False))


def test_changing_participation_rate_is_accounted_per_round():
    ours, theirs = PrivacyAccountant(delta=1e-6), RDPAccountant()
    for q in (0.05, 0.2, 0.1, 0.05):
        ours.step(noise_multiplier=1.3, sample_rate=q)
        theirs.step(noise_multiplier=1.3, sample_rate=q)
    assert ours.epsilon == pytest.approx(theirs.get_epsilon(delta=1e-6), rel=1e-9)


def test_noise_for_target_matches_opacus_and_reaches_it():
    z = noise_multiplier_for(3.0, 1e-5, 0.1, 200)
    assert z == get_noise_multiplier(target_epsilon=3.0, target_delta=1e-5, sample_rate=0.1, steps=200)
    acc = PrivacyAccountant(delta=1e-5)
    assert acc.step(z, 0.1, steps=200).epsilon <= 3.0


def test_budget_and_bad_parameters_are_refused():
    acc = PrivacyAccountant(delta=1e-5, budget=1.0)
    acc.step(5.0, 0.01)
    with pytest.raises(BudgetExceeded):
        acc.check_budget(0.3, 1.0)
    for z, q in ((0.0, 0.1), (float("nan"), 0.1), (1.0, 0.0), (1.0, 1.5)):
        with pytest.raises(PrivacyError):
            acc.step(z, q)
    with pytest.raises(PrivacyError):
        PrivacyAccountant(delta=1e-5, mechanism="gdp-typo")
