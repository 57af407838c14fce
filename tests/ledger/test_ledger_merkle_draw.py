"""Merkle trees, the executor draw and commitments: properties that protocol code relies on."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deai.core.accounts import Account
from deai.core.encoding import hash_value
from deai.ledger import (
    LedgerError,
    draw_executors,
    payout_tree,
    replication_commitment,
    result_commitment,
    shares_tree,
)
from deai.ledger.merkle import MerkleTree, leaf_hash, verify_proof

ADDRESSES = [Account.from_seed("merkle", i).address for i in range(40)]


@settings(max_examples=50, deadline=None)
@given(st.dictionaries(st.sampled_from(ADDRESSES), st.integers(1, 2**53 - 2), min_size=1, max_size=40))
def test_every_leaf_proves_and_no_other(allocation):
    tree = payout_tree(allocation)
    for address, amount in allocation.items():
        proof = tree.proof(address)
        assert verify_proof(leaf_hash(address, amount), proof, tree.root)
        assert not verify_proof(leaf_hash(address, amount + 1), proof, tree.root)
        assert len(proof) <= max(1, len(allocation)).bit_length()
    assert payout_tree(dict(reversed(list(allocation.items())))).root == tree.root  # order-free


def test_leaf_cannot_pass_for_inner_node():
    a, b = leaf_hash(ADDRESSES[0], 1), leaf_hash(ADDRESSES[1], 2)
    tree = MerkleTree([a, b])
    assert tree.root != a and not verify_proof(tree.root, [], MerkleTree([a, b, a]).root)


def test_allocation_checks():
    with pytest.raises(LedgerError):
        payout_tree({})
    with pytest.raises(LedgerError):
        payout_tree({ADDRESSES[0]: -1})
    with pytest.raises(LedgerError):
        shares_tree({ADDRESSES[0]: 6_000, ADDRESSES[1]: 3_000})
    with pytest.raises(LedgerError):
        payout_tree({ADDRESSES[0]: 1}).proof(ADDRESSES[1])
    assert shares_tree({ADDRESSES[0]: 6_000, ADDRESSES[1]: 4_000}).total == 10_000


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.integers(0, 10**6), min_size=1, max_size=30),
    st.binary(min_size=32, max_size=32),
    st.data(),
)
def test_draw_distinct_deterministic_and_order_free(weights, seed, data):
    candidates = list(zip(ADDRESSES, weights, strict=False))
    positive = [c for c in candidates if c[1] > 0]
    k = data.draw(st.integers(0, len(positive)))
    drawn = draw_executors(candidates, seed, k)
    assert len(drawn) == len(set(drawn)) == k
    assert all(dict(candidates)[a] > 0 for a in drawn)
    assert draw_executors(list(reversed(candidates)), seed, k) == drawn
    with pytest.raises(LedgerError):
        draw_executors(candidates, seed, len(positive) + 1)


def test_draw_follows_weights():
    """With k = 1, each address wins in proportion to its weight (chi-square, fixed seeds)."""
    weights = [1, 2, 3, 4]
    candidates = list(zip(ADDRESSES, weights, strict=False))
    trials = 4_000
    wins = Counter(draw_executors(candidates, hash_value(i).encode(), 1)[0] for i in range(trials))
    chi2 = sum((wins[a] - trials * w / 10) ** 2 / (trials * w / 10) for a, w in candidates)
    assert chi2 < 16.3  # p = 0.001 with 3 degrees of freedom


def test_draw_sybil_split_keeps_the_first_slot_probability():
    """Splitting one stake over two identities leaves the chance of taking the first slot unchanged."""
    whole = [(ADDRESSES[0], 600), (ADDRESSES[1], 400)]
    split = [(ADDRESSES[0], 600), (ADDRESSES[2], 200), (ADDRESSES[3], 200)]
    trials = 3_000
    a = sum(draw_executors(whole, hash_value(i).encode(), 1)[0] == ADDRESSES[1] for i in range(trials))
    b = sum(draw_executors(split, hash_value(i).encode(), 1)[0] != ADDRESSES[0] for i in range(trials))
    assert abs(a - b) < 4 * (trials * 0.24) ** 0.5


def test_commitments_bind_every_field():
    job, salt, digest = hash_value("j"), hash_value("s"), hash_value("d")
    base = result_commitment(job, ADDRESSES[0], digest, salt)
    assert base != result_commitment(job, ADDRESSES[1], digest, salt)
    assert base != result_commitment(job, ADDRESSES[0], hash_value("e"), salt)
    assert base != result_commitment(hash_value("k"), ADDRESSES[0], digest, salt)
    rep = {replication_commitment(job, r, p, salt) for r in (True, False) for p in (0, 1)}
    assert len(rep) == 4
