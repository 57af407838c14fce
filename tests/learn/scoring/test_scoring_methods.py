"""Contribution scorers: determinism, free riders/noise/copies unrewarded, Shapley properties."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from deai.learn.data import prepare
from deai.learn.errors import BadUpdates
from deai.learn.models import build_model
from deai.learn.partition import partition
from deai.learn.scoring import RoundUpdates, ValidationUtility, get_scorer
from deai.learn.scoring.base import coalition_params
from deai.learn.scoring.groups import duplicate_groups
from deai.learn.training import TrainConfig, evaluate, get_flat, set_flat, train_many

METHODS = ["loo", "gtg_shapley", "roni"]


@pytest.fixture(scope="module")
def setup():
    torch.set_num_threads(1)
    sp = prepare("digits", val=0.15, test=0.2, seed=0)
    net = build_model("logreg", sp.train.in_features, sp.train.num_classes, seed=0)
    parts = partition(sp.train.y, 6, "iid", seed=0)
    data = [sp.train.subset(p) for p in parts]
    base = get_flat(net)
    cfg = TrainConfig(epochs=2, batch_size=16, lr=0.05)
    deltas, _ = train_many(net, base, data, cfg, list(range(6)))
    return net, sp.val, base, deltas, data, cfg


def _round(setup, extra=()):
    _net, _val, base, deltas, *_ = setup
    g = torch.Generator().manual_seed(3)
    noise = torch.randn(deltas.shape[1], generator=g) * deltas.std(0)
    rows = [deltas, torch.zeros(1, deltas.shape[1]), noise[None], *extra]
    return RoundUpdates(base, torch.cat(rows))  # 0..5 honest, 6 free rider, 7 noise, then extras


@pytest.mark.parametrize("method", METHODS)
def test_scores_are_deterministic_under_a_seed(setup, method):
    net, val = setup[0], setup[1]
    rnd = _round(setup)
    a = get_scorer(method)(rnd, ValidationUtility(net, val), seed=11)
    b = get_scorer(method)(rnd, ValidationUtility(net, val), seed=11)
    assert torch.equal(a.scores, b.scores) and torch.equal(a.duplicate_of, b.duplicate_of)
    assert a.evaluations == b.evaluations > 0


@pytest.mark.parametrize("method", METHODS)
def test_honest_paid_free_rider_and_noise_not(setup, method):
    net, val = setup[0], setup[1]
    res = get_scorer(method)(_round(setup), ValidationUtility(net, val), seed=1)
    assert bool((res.scores[:6] > 0).all()), res.scores
    assert res.scores[6] <= 0 and res.scores[7] <= 0, res.scores
    assert res.rewarded.tolist() == [True] * 6 + [False, False]


@pytest.mark.parametrize("method", METHODS)
def test_a_copy_earns_nothing_and_the_group_no_more_than_one_identity(setup, method):
    net, val, _base, deltas = setup[:4]
    alone = get_scorer(method)(_round(setup), ValidationUtility(net, val), seed=5)
    copied = _round(setup, extra=[deltas[2:3].clone(), 3.0 * deltas[2:3]])  # exact and scaled copy of 2
    res = get_scorer(method)(copied, ValidationUtility(net, val), seed=5)
    assert res.duplicate_of.tolist()[8:] == [2, 2]
    assert res.scores[8] == 0 and res.scores[9] == 0
    group = float(res.scores[[2, 8, 9]].sum())
    # the group is one player: its update is the members' mean (here 5/3 of provider 2's), so the
    # value is comparable with one identity's; an exact copy alone would give exactly the same value
    exact = get_scorer(method)(
        _round(setup, extra=[deltas[2:3].clone()]), ValidationUtility(net, val), seed=5
    )
    assert float(exact.scores[[2, 8]].sum()) == pytest.approx(float(alone.scores[2]), rel=1e-9, abs=1e-12)
    assert math.isfinite(group)


def test_equal_share_splits_a_group_value(setup):
    net, val, _base, deltas = setup[:4]
    rnd = _round(setup, extra=[deltas[1:2].clone()])
    first = get_scorer("loo")(rnd, ValidationUtility(net, val))
    equal = get_scorer("loo", share="equal")(rnd, ValidationUtility(net, val))
    assert float(equal.scores[1]) == pytest.approx(float(first.scores[1]) / 2)
    assert float(equal.scores[8]) == pytest.approx(float(first.scores[1]) / 2)
    assert float(equal.scores.sum()) == pytest.approx(float(first.scores.sum()))


def test_near_copies_trained_on_the_same_data_are_merged(setup):
    net, val, base, _deltas, data, cfg = setup
    again, _ = train_many(net, base, [data[0]], cfg, [999])  # same data, another batch order
    res = get_scorer("loo")(_round(setup, extra=[again]), ValidationUtility(net, val))
    assert res.duplicate_of[8] == 0 and res.scores[8] == 0
    assert res.duplicate_of[:8].tolist() == [-1] * 8  # different data is never merged


def test_shapley_is_efficient_without_truncation(setup):
    net, val = setup[0], setup[1]
    sc = get_scorer("gtg_shapley", tolerance=0.0, max_permutations=8, min_permutations=8, block=4, dedup=None)
    res = sc(_round(setup), ValidationUtility(net, val), seed=2)
    gain = res.info["u_all"] - res.info["u_none"]
    assert float(res.scores.sum()) == pytest.approx(gain, rel=1e-9, abs=1e-12)
    assert res.info["permutations"] == 8


def test_shapley_estimate_matches_exact_values_on_four_players(setup):
    net, val, base, deltas = setup[:4]
    rnd = RoundUpdates(base, torch.cat([deltas[:3], torch.zeros(1, deltas.shape[1])]))
    util = ValidationUtility(net, val)
    masks = torch.tensor(list(itertools.product([0.0, 1.0], repeat=4)))
    values = dict(
        zip(
            map(tuple, masks.tolist()),
            util(coalition_params(base, rnd.updates, torch.ones(4), masks)).double().tolist(),
            strict=True,
        )
    )
    exact = torch.zeros(4, dtype=torch.float64)
    for perm in itertools.permutations(range(4)):
        cur = [0.0] * 4
        for p in perm:
            before = values[tuple(cur)]
            cur[p] = 1.0
            exact[p] += values[tuple(cur)] - before
    exact /= 24
    sc = get_scorer("gtg_shapley", tolerance=0.0, max_permutations=400, min_permutations=400, dedup=None)
    est = sc(rnd, util, seed=0).scores
    assert torch.allclose(est, exact, rtol=0.1, atol=0.05 * float(exact.abs().max()))


def test_budget_bounds_the_evaluations(setup):
    net, val = setup[0], setup[1]
    rnd = _round(setup)
    res = get_scorer("gtg_shapley", max_permutations=16, min_permutations=16)(
        rnd, ValidationUtility(net, val)
    )
    assert res.evaluations <= 16 * res.info["players"] + 2
    assert get_scorer("loo")(rnd, ValidationUtility(net, val)).evaluations == res.info["players"] + 1
    roni = get_scorer("roni", references=3)(rnd, ValidationUtility(net, val))
    assert roni.evaluations == 2 * 3 * res.info["players"]
    assert 7 in roni.info["rejected"]


def test_truncated_round_scores_zero(setup):
    net, val, base, deltas = setup[:4]
    rnd = RoundUpdates(base, torch.zeros(3, deltas.shape[1]))
    res = get_scorer("gtg_shapley", dedup=None)(rnd, ValidationUtility(net, val))
    assert res.info["truncated_round"] and torch.equal(res.scores, torch.zeros(3, dtype=torch.float64))
    assert res.evaluations == 2


def test_vmapped_utility_matches_evaluate(setup):
    net, val, base, deltas = setup[:4]
    cands = base + deltas[:3]
    util = ValidationUtility(net, val, chunk=2)
    got = util(cands)
    acc = ValidationUtility(net, val, metric="accuracy")(cands)
    for i in range(3):
        set_flat(net, cands[i])
        m = evaluate(net, val)
        assert float(got[i]) == pytest.approx(-m["loss"], rel=1e-4)
        assert float(acc[i]) == pytest.approx(m["accuracy"], abs=1e-6)
    set_flat(net, base)
    assert util.evaluations == 3


def test_malformed_rounds_are_refused(setup):
    base, deltas = setup[2], setup[3]
    bad = deltas.clone()
    bad[1, 0] = float("nan")
    with pytest.raises(BadUpdates, match="rows \\[1\\]"):
        RoundUpdates(base, bad)
    with pytest.raises(BadUpdates):
        RoundUpdates(base[:-1], deltas)
    with pytest.raises(BadUpdates):
        RoundUpdates(base, deltas, torch.zeros(deltas.shape[0]))
    with pytest.raises(ValueError):
        get_scorer("gtg_shapley", min_permutations=10, max_permutations=5)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=1, max_size=12), st.integers(0, 2**31 - 1))
def test_duplicate_groups_point_to_the_first_copy(pattern, seed):
    g = torch.Generator().manual_seed(seed)
    protos = torch.randn(5, 40, generator=g)
    protos[0] = 0.0  # prototype 0 is a zero update: never grouped
    rows = torch.stack([protos[p] * (1.0 + 0.5 * i) for i, p in enumerate(pattern)])
    leader = duplicate_groups(rows, 0.999).tolist()
    for i, p in enumerate(pattern):
        if p == 0:
            assert leader[i] == i
        else:
            assert leader[i] == pattern.index(p)
