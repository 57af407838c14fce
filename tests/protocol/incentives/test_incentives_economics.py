"""Royalties, reputation and Sybil economics on a real ledger."""

from __future__ import annotations

import pytest
import torch

from deai.core.encoding import sha256_hex
from deai.learn.data import prepare
from deai.learn.models import build_model
from deai.learn.partition import partition
from deai.learn.scoring import RoundUpdates, ValidationUtility, get_scorer
from deai.learn.training import TrainConfig, get_flat, train_many
from deai.ledger.config import DATA, NetworkConfig
from deai.ledger.errors import BadProof, NothingToClaim
from deai.ledger.txs import ClaimRoyalty
from deai.protocol.incentives import (
    Provenance,
    ReputationPolicy,
    ScoreBook,
    SplitRule,
    allocate,
    apply_reputation,
    pay_inference,
    reputation_deltas,
)
from deai.protocol.incentives.royalties import provenance_shares
from deai.protocol.incentives.sybil import (
    compute_stake_ratio_bps,
    min_compute_stake,
    provider_join_stake,
    split_weight,
)
from deai.protocol.jobs.deterrence import min_stake


def test_royalties_flow_back_to_contributors_by_share(world):
    led = world.ledger
    task = world.task("model-task", budget=1_000)
    scores = {a.address: s for a, s in zip(world.data, [0.5, 0.3, 0.2, 0.0, -1.0, 0.0], strict=True)}
    prov = Provenance.from_scores(
        world.coordinator.address, "0x" + sha256_hex(b"model"), task, scores, method="gtg_shapley", rounds=3
    )
    assert prov.shares == {
        world.data[0].address: 5_000,
        world.data[1].address: 3_000,
        world.data[2].address: 2_000,
    }
    prov.register(led, world.coordinator, host_bps=3_000)
    before = {a.address: led.balance(a.address) for a in [*world.data, *world.hosts]}
    for _ in range(7):
        pay_inference(led, world.users[0], prov.model, 100_000, [h.address for h in world.hosts])
    led.check_invariants()
    assert all(led.balance(h.address) - before[h.address] == 7 * 15_000 for h in world.hosts)
    assert prov.owed(led, world.data[0].address) == 245_000
    for a in world.data[:3]:
        prov.claim(led, a)
        with pytest.raises(NothingToClaim):
            prov.claim(led, a)
    got = [led.balance(a.address) - before[a.address] for a in world.data]
    assert got == [245_000, 147_000, 98_000, 0, 0, 0]  # 70% of 700,000 by 50/30/20 shares
    with pytest.raises(BadProof):  # a non-contributor cannot claim with someone's proof
        led.send(
            world.data[4],
            ClaimRoyalty(model=prov.model, shares=5_000, proof=tuple(prov.tree.proof(world.data[0].address))),
        )
    led.check_invariants()
    assert sum(provenance_shares({"0x" + "ab" * 20: 1e-9, "0x" + "cd" * 20: 2e-9}).values()) == 10_000


def test_reputation_from_outcomes_changes_draw_weight(world):
    led = world.ledger
    task = world.task("rep-task", budget=1_000)
    addrs = [a.address for a in world.data]
    book = ScoreBook()
    book.add(1, addrs, [0.5, 0.1, 0.0, -0.2, 0.0, 0.3], duplicate_of=[-1, -1, -1, -1, 0, -1])
    from deai.protocol.incentives import slash_unrewarded

    slash_unrewarded(led, world.coordinator, task, book)
    deltas = reputation_deltas(led, task, book, policy=ReputationPolicy())
    by = {(d.account, d.role): d for d in deltas}
    assert by[(addrs[0], DATA)].delta == 2
    assert by[(addrs[3], DATA)].delta == -2 - 5  # non-positive score, slashed
    assert by[(addrs[4], DATA)].delta == -3 - 5  # a copy, slashed
    apply_reputation(led, world.minter, deltas)  # the minter is the default reputation oracle
    assert led.reputation(addrs[0], DATA) == 2 and led.reputation(addrs[4], DATA) == -8
    led.check_invariants()
    cfg = NetworkConfig(minter=world.minter.address)
    good, _ = split_weight(cfg, 10_000, 1, reputation=4)
    bad, _ = split_weight(cfg, 10_000, 1, reputation=-4)
    assert good > 10_000 > bad


@pytest.mark.parametrize("k", [2, 3, 7, 10])
def test_splitting_a_compute_stake_never_weighs_more(k):
    cfg = NetworkConfig(minter="0x" + "01" * 20)
    for stake in (1_000, 5_000, 9_999, 100_000):
        for rep in (0, 3):
            one, split = split_weight(cfg, stake, k, reputation=rep)
            assert split <= one


def test_stakes_follow_the_break_even_rule():
    # a cheater with 20% of the draw weight, 3 executors, replicated half the time
    need = min_compute_stake(100, 0.5, 3, 0.2)
    assert need >= min_stake(100, 0.5, 0.0) and need > 100
    assert compute_stake_ratio_bps(0.5, 3, 0.2) >= need * 100 - 100
    assert provider_join_stake(1_000, 0.9) == 112  # (1 - 0.9) / 0.9 * 1000, rounded up
    assert provider_join_stake(1_000, 1.0) == 0


@pytest.fixture(scope="module")
def digits_round():
    torch.set_num_threads(1)
    sp = prepare("digits", val=0.15, test=0.2, seed=1)
    net = build_model("mlp", sp.train.in_features, sp.train.num_classes, seed=1)
    parts = partition(sp.train.y, 6, "iid", seed=1)
    return net, sp, [sp.train.subset(p) for p in parts]


SPLIT_PAYS = pytest.mark.xfail(
    strict=True,
    reason="Shapley values are not replication-robust: with the score game's equal lengths, k disjoint"
    " parts of one dataset out-earn the whole (measured +55% for k=2); the join stake must cover it"
    " (docs/incentives.md, Sybil economics)",
)


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("method", [pytest.param("gtg_shapley", marks=SPLIT_PAYS), "loo"])
def test_splitting_one_dataset_across_identities_earns_no_more(digits_round, k, method):
    """A party holding one dataset joins once, or as k identities each with 1/k of it (disjoint parts)."""
    net, sp, parts = digits_round
    cfg = TrainConfig(epochs=2, batch_size=16, lr=0.05)
    base = get_flat(net)
    others, sybil = parts[:5], parts[5]
    idx = torch.arange(len(sybil))
    pieces = [sybil.subset(idx[i::k]) for i in range(k)]
    budget = 1_000_000
    payouts = []
    for datasets in ([*others, sybil], [*others, *pieces]):
        deltas, _ = train_many(net, base, datasets, cfg, list(range(len(datasets))))
        weights = torch.tensor([float(len(d)) for d in datasets])
        res = get_scorer(method)(RoundUpdates(base, deltas, weights), ValidationUtility(net, sp.val), seed=0)
        addrs = [f"0x{i + 1:040x}" for i in range(len(datasets))]
        alloc = allocate(
            budget, SplitRule(compute_bps=0), dict(zip(addrs, res.scores.tolist(), strict=True)), {}
        )
        mine = [a.lower() for a in addrs[5:]]
        payouts.append(sum(v for a, v in alloc.data.items() if a.lower() in mine))
    single, split = payouts
    assert single > 0
    assert split <= single, (single, split)
