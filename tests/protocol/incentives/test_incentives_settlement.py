"""Split rule, Merkle settlement and claims: conservation, no double claim, nothing for non-contributors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deai.core.accounts import check_address
from deai.ledger.errors import BadProof, DoubleClaim
from deai.ledger.txs import ClaimPayout
from deai.protocol.incentives import ScoreBook, Settlement, SplitRule, allocate, settle_task, slash_unrewarded
from deai.protocol.incentives.errors import BadSplit, SettlementError
from deai.protocol.incentives.split import apportion
from deai.protocol.incentives.sybil import unrewarded

ADDRS = [check_address(f"0x{i:040x}") for i in range(1, 40)]


@settings(max_examples=80, deadline=None)
@given(
    st.integers(0, 2**53 - 1),
    st.lists(st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False), min_size=1, max_size=20),
)
def test_apportion_conserves_exactly_and_pays_only_positive(total, weights):
    w = dict(zip(ADDRS, weights, strict=False))
    out = apportion(total, w)
    if any(v > 0 for v in w.values()) and total:
        assert sum(out.values()) == total
    else:
        assert out == {}
    assert all(w[a] > 0 and v > 0 for a, v in out.items())


@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, 10**12),
    st.integers(0, 10_000),
    st.lists(st.floats(-1.0, 1.0, allow_nan=False), min_size=0, max_size=8),
    st.lists(st.integers(0, 1000), min_size=0, max_size=5),
)
def test_allocation_never_exceeds_the_budget(budget, compute_bps, scores, work):
    rule = SplitRule(compute_bps=compute_bps)
    a = allocate(
        budget, rule, dict(zip(ADDRS, scores, strict=False)), dict(zip(ADDRS[20:], work, strict=False))
    )
    assert a.total + a.unallocated == budget and a.unallocated >= 0
    assert all(scores[ADDRS.index(x)] > 0 for x in a.data)
    has_data = any(s > 0 for s in scores)
    has_work = any(w > 0 for w in work)
    if has_data and has_work:
        assert sum(a.compute.values()) == budget * compute_bps // 10_000
        assert a.unallocated == 0
    if has_data != has_work and budget:
        assert a.unallocated == 0  # the empty pool went to the other one


def test_split_rule_is_configurable_and_checked():
    scores = {ADDRS[0]: 3.0, ADDRS[1]: 1.0, ADDRS[2]: 0.01, ADDRS[3]: -5.0}
    work = {ADDRS[10]: 30, ADDRS[11]: 10}
    a = allocate(10_000, SplitRule(compute_bps=2_000, min_share_bps=100), scores, work)
    assert a.compute == {ADDRS[10]: 1_500, ADDRS[11]: 500}
    assert a.data == {ADDRS[0]: 6_000, ADDRS[1]: 2_000}  # the 0.25% dust share is dropped
    keep = allocate(100, SplitRule(compute_bps=5_000, reassign_empty=False), scores, {})
    assert keep.unallocated == 50 and sum(keep.data.values()) == 50
    with pytest.raises(BadSplit):
        SplitRule(compute_bps=10_001)
    with pytest.raises(BadSplit):
        SplitRule.from_json({"compute_bps": 1, "bonus": 2})
    assert SplitRule.from_json(SplitRule(compute_bps=7).to_json()) == SplitRule(compute_bps=7)


def _book(world, scores_by_round):
    book = ScoreBook()
    addrs = [a.address for a in world.data]
    for r, scores in enumerate(scores_by_round, 1):
        book.add(r, addrs, scores)
    return book


def test_settlement_conserves_and_claims_pay_exactly_once(world):
    led = world.ledger
    task = world.task("t1", budget=1_000_000)
    book = _book(world, [[0.3, 0.1, 0.0, -0.2, 0.05, 0.2], [0.2, 0.1, 0.0, -0.1, -0.06, 0.1]])
    before = {a.address: led.balance(a.address) for a in world.data}
    s = settle_task(led, world.coordinator, task, SplitRule(compute_bps=0), book)
    led.check_invariants()
    assert led.task(task).budget == 0 and led.payout(task, 0).total == 1_000_000
    paid = {world.data[i].address for i in (0, 1, 5)}
    assert set(s.tree.amounts) == paid  # zero, negative and net-negative totals get nothing
    for a in world.data:
        if a.address in paid:
            s.claim(led, a)
            with pytest.raises(DoubleClaim):
                s.claim(led, a)
        else:
            with pytest.raises(SettlementError):
                s.claim(led, a)
        led.check_invariants()
    gained = {a.address: led.balance(a.address) - before[a.address] for a in world.data}
    assert sum(gained.values()) == 1_000_000
    assert gained[world.data[0].address] == 500_000  # 0.5 of a total 1.0 of positive score
    assert led.payout(task, 0).claimed == 1_000_000


def test_a_forged_amount_or_proof_is_refused(world):
    led = world.ledger
    task = world.task("t2", budget=10_000)
    s = settle_task(led, world.coordinator, task, SplitRule(), _book(world, [[1, 1, 1, 1, 1, 1]]))
    a = world.data[0]
    proof = tuple(s.proof(a.address))
    with pytest.raises(BadProof):
        led.send(a, ClaimPayout(task=task, epoch=0, amount=s.tree.amounts[a.address] + 1, proof=proof))
    with pytest.raises(BadProof):
        led.send(
            world.data[1], ClaimPayout(task=task, epoch=0, amount=s.tree.amounts[a.address], proof=proof)
        )
    s.claim(led, a)
    led.check_invariants()


def test_free_riders_are_slashed_and_their_stake_paid_to_contributors(world):
    led = world.ledger
    task = world.task("t3", budget=10_000, provider_stake=500)
    addrs = [a.address for a in world.data]
    book = ScoreBook()
    # provider 4 is a merged copy of provider 0 (score 0); 2 free-rides (0); 3 sends noise (<0)
    book.add(1, addrs, [0.4, 0.2, 0.0, -0.3, 0.0, 0.1], duplicate_of=[-1, -1, -1, -1, 0, -1])
    assert unrewarded(book) == sorted([addrs[2], addrs[3], addrs[4]])
    receipts = slash_unrewarded(led, world.coordinator, task, book)
    assert len(receipts) == 3 and led.task(task).budget == 10_000 + 3 * 500
    s = settle_task(led, world.coordinator, task, SplitRule(compute_bps=0), book)
    assert s.tree.total == 11_500 and set(s.tree.amounts) == {addrs[0], addrs[1], addrs[5]}
    led.check_invariants()


def test_settlement_needs_something_to_pay(world):
    task = world.task("t4", budget=1_000)
    with pytest.raises(SettlementError):
        settle_task(world.ledger, world.coordinator, task, SplitRule(), _book(world, [[0, 0, -1, 0, 0, 0]]))
    with pytest.raises(SettlementError):
        Settlement.build(task, 0, allocate(0, SplitRule(), {}, {}))


def test_score_book_roundtrips_and_rejects_bad_input(world):
    book = _book(world, [[0.1, 0.2, 0.3, 0.0, -0.1, 0.5]])
    again = type(book).from_json(book.to_json())
    assert again.totals() == book.totals()
    from deai.protocol.incentives.errors import BadScores

    with pytest.raises(BadScores):
        book.add(1, [a.address for a in world.data], [0.0] * 6)
    with pytest.raises(BadScores):
        book.add(2, [a.address for a in world.data], [0.0] * 5)
    with pytest.raises(BadScores):
        book.add(3, [a.address for a in world.data], [float("nan")] * 6)
