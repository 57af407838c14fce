"""Every attack of the catalogue (deai.testing.attacks) against a running network: each attempt is
refused, the hub keeps serving, the supply is conserved and no honest stake is lost."""

import pytest

from deai.ledger.config import DATA
from deai.ledger.txs import Mint, Slash
from deai.testing.attacks import CATALOGUE, Attack, run_attack


def _param(attack: Attack):
    return pytest.param(attack, id=attack.name, marks=[pytest.mark.slow] if attack.slow else [])


@pytest.mark.parametrize("attack", [_param(a) for a in CATALOGUE])
def test_attack_is_refused(attack, request):
    target = request.getfixturevalue("fresh_attack_target" if attack.fresh else "attack_target")
    outcome = run_attack(target, attack)
    assert outcome.ok, str(outcome)


def test_catalogue_covers_every_finding():
    findings = {a.finding for a in CATALOGUE}
    assert {str(i) for i in range(1, 11)} <= findings
    assert len({a.name for a in CATALOGUE}) == len(CATALOGUE)


def test_the_harness_notices_harm(attack_target):
    """The checks can fail: a slash of an honest stake and a mint (done here with the network's
    own privileged key, which no attacker holds) are reported, and an attack that is not refused
    is not ok."""
    t = attack_target
    victim = t.honest[DATA][0]
    minter = t.proc.minter

    def privileged(target, tally):
        slash = Slash(account=victim.address, role=DATA, amount=1)
        tally.tx("slash by the slasher", target.submit(minter, slash))
        target.submit(minter, Mint(to=target.checker.address, amount=1))

    outcome = run_attack(t, Attack("control", "control", privileged))
    assert not outcome.ok
    assert outcome.attempts == 1 and outcome.refused == 0
    assert not outcome.honest_intact and not outcome.conserved and outcome.survived
