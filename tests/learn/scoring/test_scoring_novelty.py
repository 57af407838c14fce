"""Novelty checks: zero, copy, replay, stale global, public-data and ALIE-like updates earn nothing;
honest IID providers are not flagged; the checks are deterministic; sketches are linear and exact."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from deai.learn.attacks import get_attack
from deai.learn.data import prepare
from deai.learn.errors import BadUpdates
from deai.learn.models import build_model
from deai.learn.partition import partition
from deai.learn.scoring import (
    SKETCH_DIM,
    Flag,
    NoveltyConfig,
    RoundUpdates,
    ValidationUtility,
    check_updates,
    count_sketch,
    get_scorer,
)
from deai.learn.scoring.sketch import SKETCH_CHUNK
from deai.learn.training import TrainConfig, get_flat, train_many

D = 600


def _honest(n: int, seed: int, d: int = D) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` IID-like updates: a common direction plus independent noise of the same size."""
    g = torch.Generator().manual_seed(seed)
    mean = torch.randn(d, generator=g)
    return mean + torch.randn(n, d, generator=g), mean


KINDS = ("honest", "zero", "near_zero", "copy", "scaled_copy", "replay", "stale", "public", "alie")
EXPECT = {
    "zero": Flag.ZERO,
    "near_zero": Flag.ZERO,
    "copy": Flag.COPY,
    "scaled_copy": Flag.COPY,
    "replay": Flag.REPLAY,
    "stale": Flag.STALE_GLOBAL,
    "public": Flag.PUBLIC,
    "alie": Flag.CONSENSUS,
}


@settings(max_examples=40, deadline=None)
@given(
    kinds=st.lists(st.sampled_from(KINDS[1:]), min_size=0, max_size=5),
    n_honest=st.integers(6, 14),
    seed=st.integers(0, 10_000),
    z=st.floats(0.0, 3.0),
)
def test_every_adversary_kind_is_flagged_and_no_honest_provider(kinds, n_honest, seed, z):
    g = torch.Generator().manual_seed(seed + 1)
    honest, _ = _honest(n_honest, seed)
    earlier, _ = _honest(4, seed + 7)  # an earlier round's updates (another common direction)
    previous = earlier.mean(0)
    public = honest.mean(0) + torch.randn(D, generator=g)  # the public data's own update
    rows, expect = [h for h in honest], [Flag.OK] * n_honest
    for k in kinds:
        if k == "zero":
            rows.append(torch.zeros(D))
        elif k == "near_zero":
            rows.append(torch.randn(D, generator=g) * 1e-3)
        elif k == "copy":
            rows.append(honest[0].clone())
        elif k == "scaled_copy":
            rows.append(honest[1] * 2.5)
        elif k == "replay":
            rows.append(earlier[2].clone())
        elif k == "stale":
            rows.append(previous.clone())
        elif k == "public":
            rows.append(public + 0.1 * torch.randn(D, generator=g))  # another batch order of it
        else:
            rows.append(get_attack("alie", z=z).craft(honest, None, 1, g)[0])
        # a second ALIE sends the first one's vector: a copy of it (copies precede consensus)
        expect.append(
            Flag.COPY if k == "alie" and kinds.index("alie") < len(expect) - n_honest else EXPECT[k]
        )
    res = check_updates(
        torch.stack(rows), public=public, previous=previous, history=count_sketch(earlier).float()
    )
    flags = [Flag(int(f)) for f in res.flags]
    assert flags[:n_honest] == [Flag.OK] * n_honest  # no honest provider flagged
    assert flags == expect
    for i, k in enumerate(kinds, n_honest):
        if k == "copy":
            assert int(res.source[i]) == 0  # credit to the first committer
        if k == "replay":
            assert int(res.source[i]) == 2


def test_copy_credit_goes_to_the_first_committer_and_chains_resolve():
    honest, _ = _honest(8, 3)
    rows = torch.cat([honest, honest[4:5] * 0.5, honest[4:5] * 3.0])
    res = check_updates(rows)
    assert res.flags.tolist() == [0] * 8 + [Flag.COPY, Flag.COPY]
    assert res.source.tolist()[8:] == [4, 4]
    assert res.leader().tolist() == [*range(8), 4, 4]


def test_an_early_replay_does_not_turn_the_victims_fresh_update_into_a_copy():
    # the replay commits first and is flagged; the victim (same data, close update) stays OK
    honest, _ = _honest(8, 5)
    replayed = honest[3] + 0.05 * torch.randn(D, generator=torch.Generator().manual_seed(0))
    rows = torch.cat([replayed[None], honest])
    res = check_updates(rows, history=count_sketch(replayed).float())
    assert int(res.flags[0]) == Flag.REPLAY
    assert res.flags[1:].tolist() == [0] * 8


def test_honest_iid_providers_are_not_flagged_at_scale():
    honest, _ = _honest(1000, 11, d=2000)
    res = check_updates(honest)
    assert int((res.flags != 0).sum()) == 0
    assert float(res.copy_ratio[1:].min()) > 0.5


def test_checks_are_deterministic():
    honest, _ = _honest(10, 2)
    rows = torch.cat([honest, honest[:1], torch.zeros(1, D)])
    a, b = check_updates(rows), check_updates(rows.clone())
    assert torch.equal(a.flags, b.flags) and torch.equal(a.source, b.source)
    assert torch.equal(a.sketches, b.sketches)
    assert a.copy_ratio.equal(b.copy_ratio) or bool(torch.isnan(a.copy_ratio[0]))


def test_malformed_inputs_are_refused():
    honest, _ = _honest(6, 1)
    with pytest.raises(BadUpdates):
        check_updates(honest, history=torch.zeros(3, SKETCH_DIM + 1))
    with pytest.raises(BadUpdates):
        check_updates(honest, public=torch.zeros(D + 1))
    bad = honest.clone()
    bad[2, 3] = float("nan")
    with pytest.raises(BadUpdates):
        check_updates(bad)
    with pytest.raises(ValueError):
        NoveltyConfig(copy=1.5)


def test_sketch_is_linear_exact_for_copies_and_streams_over_chunks():
    g = torch.Generator().manual_seed(0)
    d = SKETCH_CHUNK * 2 + 123
    a, b = torch.randn(d, generator=g).double(), torch.randn(d, generator=g).double()
    sa, sb, sab = count_sketch(a), count_sketch(b), count_sketch(a + 2 * b)
    assert sa.shape == (1, SKETCH_DIM)
    torch.testing.assert_close(sab, sa + 2 * sb, rtol=1e-9, atol=1e-9)
    assert torch.equal(count_sketch(a.clone()), sa)
    # inner products are preserved in expectation: the cosine of unrelated vectors stays near 0
    cos = float((sa @ sb.T) / (sa.norm() * sb.norm()))
    assert abs(cos) < 0.15


@pytest.fixture(scope="module")
def digits_round():
    torch.set_num_threads(1)
    sp = prepare("digits", val=0.15, test=0.2, seed=4)
    net = build_model("logreg", 64, 10, seed=0)
    parts = partition(sp.train.y, 10, "iid", seed=4)
    base = get_flat(net)
    cfg = TrainConfig(epochs=1, lr=0.05)
    deltas, _ = train_many(net, base, [sp.train.subset(p) for p in parts] + [sp.val], cfg, list(range(11)))
    public, _ = train_many(net, base, [sp.val], cfg, [99])
    return net, sp.val, base, deltas[:10], deltas[10], public[0]


@settings(max_examples=6, deadline=None)
@given(
    mix=st.lists(st.sampled_from(["zero", "copy", "public", "alie"]), min_size=1, max_size=4),
    method=st.sampled_from(["loo", "gtg_shapley", "roni"]),
)
def test_flagged_adversaries_earn_zero_and_honest_providers_are_paid(digits_round, mix, method):
    net, val, base, honest, public_trainer, public = digits_round
    g = torch.Generator().manual_seed(len(mix))
    rows = [h for h in honest]
    for k in mix:
        if k == "zero":
            rows.append(torch.zeros_like(honest[0]))
        elif k == "copy":
            rows.append(honest[len(rows) % 10].clone())
        elif k == "public":
            rows.append(public_trainer.clone())
        else:
            rows.append(get_attack("alie").craft(honest, None, 1, g)[0])
    deltas = torch.stack(rows)
    novelty = check_updates(deltas, public=public)
    opts = {"max_permutations": 8, "min_permutations": 8} if method == "gtg_shapley" else {}
    res = get_scorer(method, **opts)(
        RoundUpdates(base, deltas), ValidationUtility(net, val), seed=1, novelty=novelty
    )
    assert novelty.flags[:10].tolist() == [0] * 10
    assert bool((novelty.flags[10:] != 0).all())
    assert res.scores[10:].tolist() == [0.0] * len(mix)  # adversaries earn exactly nothing
    assert float(res.scores[:10].clamp_min(0).sum()) > 0


def test_the_commit_rank_decides_who_copied_whom_and_nothing_else():
    from deai.learn.scoring import Flag, check_updates

    g = torch.Generator().manual_seed(5)
    rows = torch.randn(8, 400, generator=g)
    rows[6] = rows[2]  # rows 2 and 6: one update sent twice
    plain = check_updates(rows)
    assert plain.flags[6] == Flag.COPY and plain.source[6] == 2
    rank = torch.tensor([0, 1, 7, 2, 3, 4, 5, 6])  # but row 6 was committed before row 2
    ranked = check_updates(rows, rank=rank)
    assert ranked.flags[2] == Flag.COPY and ranked.source[2] == 6 and ranked.flags[6] == Flag.OK
    others = [0, 1, 3, 4, 5, 7]
    assert torch.equal(plain.flags[others], ranked.flags[others])
    with pytest.raises(Exception, match="permutation"):
        check_updates(rows, rank=torch.tensor([0, 0, 1, 2, 3, 4, 5, 6]))
