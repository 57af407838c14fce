import math
import random

import pytest

from deai.ledger.draw import draw_executors
from deai.protocol.jobs.deterrence import (
    check_stake,
    effective_check,
    majority_chance,
    min_stake,
    required_ratio_bps,
)
from deai.protocol.jobs.errors import ReplicationMismatch, StakeTooLow
from deai.protocol.jobs.sampling import ReplicationChoice, audit_selected, expected_overhead

JOB = "0x" + "22" * 32


def test_replication_choice_commits_and_checks():
    c = ReplicationChoice.draw(JOB, 0.5, 3, random.Random(1))
    c.check(c.commitment)
    flipped = ReplicationChoice(JOB, not c.replicated, c.primary, c.salt)
    with pytest.raises(ReplicationMismatch, match="does not match"):
        flipped.check(c.commitment)
    other_primary = ReplicationChoice(JOB, c.replicated, (c.primary + 1) % 3, c.salt)
    with pytest.raises(ReplicationMismatch):
        other_primary.check(c.commitment)
    assert c.active(3) == ([0, 1, 2] if c.replicated else [c.primary])


def test_replication_rate_matches_p():
    rng = random.Random(5)
    n = 4000
    hits = sum(ReplicationChoice.draw(JOB, 0.1, 3, rng).replicated for _ in range(n))
    assert abs(hits / n - 0.1) < 4 * math.sqrt(0.09 / n)
    primaries = [ReplicationChoice.draw(JOB, 0.0, 3, rng).primary for _ in range(900)]
    assert all(200 < primaries.count(i) < 400 for i in range(3))


def test_audit_is_deterministic_from_the_beacon():
    beacons = ["0x" + f"{i:064x}" for i in range(2000)]
    picks = [audit_selected(b, JOB, 0.25) for b in beacons]
    assert picks == [audit_selected(b, JOB, 0.25) for b in beacons]
    assert 0.2 < sum(picks) / len(picks) < 0.3
    assert not any(audit_selected(b, JOB, 0.0) for b in beacons[:50])


def test_expected_overhead():
    assert expected_overhead(0.1, 3) == pytest.approx(1.2)
    assert expected_overhead(1.0, 3) == 3.0


def test_break_even_stake():
    # p = 1, q = 0: no gain is possible, any stake deters
    assert min_stake(10, 1.0, 0.0) == 0
    # p = 0.1, q = 0: the cheater gains 0.9 k unchecked and loses S with probability 0.1
    assert min_stake(10, 0.1, 0.0) == pytest.approx(90)
    assert min_stake(10, 0.1, 0.2) == pytest.approx((0.9 * 10 + 0.1 * 0.2 * 10) / (0.1 * 0.8))
    assert required_ratio_bps(0.1, 0.0) == 90_000
    check_stake(90, 10, 0.1, 0.0)
    with pytest.raises(StakeTooLow, match="break-even"):
        check_stake(89, 10, 0.1, 0.0)
    with pytest.raises(ValueError):
        min_stake(10, 0.0, 0.0)
    assert majority_chance(0.5, 3) == pytest.approx(0.5)
    assert majority_chance(0.1, 3) == pytest.approx(3 * 0.01 * 0.9 + 0.001)
    assert effective_check(0.1, 0.5) == pytest.approx(0.55)


def test_sybil_split_gains_nothing_in_the_draw():
    """Splitting one stake over k identities leaves the owner's chance to be drawn unchanged."""
    honest = [(f"0x{i:040x}", 100) for i in range(1, 10)]
    whole = [("0x" + "f" * 40, 300)]
    split = [(f"0x{'e' * 39}{j}", 100) for j in range(3)]

    def first_slot_share(pool, owner, trials=6000):
        wins = 0
        for t in range(trials):
            seed = t.to_bytes(8, "big")
            wins += draw_executors(pool, seed, 1)[0] in owner
        return wins / trials

    a = first_slot_share(honest + whole, {whole[0][0]})
    b = first_slot_share(honest + split, {s[0] for s in split})
    assert a == pytest.approx(300 / 1200, abs=0.02) and b == pytest.approx(300 / 1200, abs=0.02)
    # r = 3 slots: the split owner holds about its stake share of slots (0.75), never more, and holds a
    # majority less often than the binomial bound q of the deterrence rule; one identity is capped at 1.
    trials, slots, majorities = 4000, 0, 0
    owner = {s[0] for s in split}
    for t in range(trials):
        drawn = draw_executors(honest + split, t.to_bytes(8, "big"), 3)
        assert len(set(drawn)) == 3  # no provider drawn twice for one job
        k = sum(a in owner for a in drawn)
        slots, majorities = slots + k, majorities + (k >= 2)
    assert slots / trials == pytest.approx(0.75, abs=0.04)
    assert majorities / trials < majority_chance(0.25, 3)
