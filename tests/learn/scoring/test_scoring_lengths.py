"""The score game pays for an update's direction, not its length: an honest update sent s times
longer scores no more than as sent (or than the median provider).

Every scorer rescales the players' updates to their median norm before valuing coalitions
(:func:`deai.learn.scoring.base.bound_lengths`, ``lengths="equal"`` by default). The raw game
credits length, and a clip at the median still pays a short update for being sent longer (both
checked here, so the property is not vacuous)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from deai.learn.data import prepare
from deai.learn.models import build_model
from deai.learn.partition import partition
from deai.learn.scoring import RoundUpdates, ValidationUtility, check_updates, get_scorer
from deai.learn.scoring.base import LENGTHS, bound_lengths
from deai.learn.training import TrainConfig, get_flat, train_many

METHODS = ["loo", "gtg_shapley", "roni"]
N = 10


@pytest.fixture(scope="module")
def honest():
    """One round of 10 honest IID providers from an untrained MLP (where length pays most)."""
    torch.set_num_threads(1)
    sp = prepare("digits", val=0.2, test=0.1, seed=1)
    net = build_model("mlp", sp.train.in_features, sp.train.num_classes, seed=1)
    parts = partition(sp.train.y, N, "iid", seed=1)
    base = get_flat(net)
    cfg = TrainConfig(epochs=2, batch_size=16, lr=0.05)
    deltas, _ = train_many(net, base, [sp.train.subset(p) for p in parts], cfg, list(range(N)))
    util = ValidationUtility(net, sp.val)
    return base, deltas, util, {m: _score(m, base, deltas, util) for m in METHODS}


def _score(method, base, deltas, util, **opts):
    rnd = RoundUpdates(base, deltas)
    return get_scorer(method, **opts)(rnd, util, seed=3, novelty=check_updates(deltas))


def test_bound_lengths_rescales_clips_or_keeps_and_keeps_directions():
    g = torch.Generator().manual_seed(0)
    u = torch.randn(7, 50, generator=g) * torch.arange(1, 8, dtype=torch.float32)[:, None]
    u[3] = 0.0
    norms = u.norm(dim=1)
    live = norms > 0
    r = float(norms[live].median())
    equal, radius = bound_lengths(u, "equal")
    assert radius == pytest.approx(r)
    assert torch.allclose(equal[live].norm(dim=1), torch.full((6,), r), rtol=1e-6)
    clip, _ = bound_lengths(u, "clip")
    assert bool((clip.norm(dim=1) <= r * (1 + 1e-6)).all())
    assert torch.equal(clip[norms <= r], u[norms <= r])
    for out in (equal, clip):
        assert torch.equal(out[3], u[3])  # a zero row stays zero
        cos = torch.nn.functional.cosine_similarity(out[live], u[live])
        assert bool((cos > 1 - 1e-6).all())
    assert bound_lengths(u, "raw") == (u, None)
    assert torch.equal(bound_lengths(u, "equal")[0], equal)  # deterministic
    assert bound_lengths(torch.zeros(3, 4), "equal")[1] is None
    # a row's own scale does not change its rescaled row
    scaled = u.clone()
    scaled[6] *= 7.0
    assert torch.allclose(bound_lengths(scaled, "equal")[0], equal, rtol=1e-5)
    assert LENGTHS == ("equal", "clip", "raw")
    with pytest.raises(ValueError):
        bound_lengths(u, "unit")
    with pytest.raises(ValueError):
        get_scorer("loo", lengths="clipped")


@settings(max_examples=15, deadline=None)
@given(st.sampled_from(METHODS), st.integers(0, N - 1), st.floats(2.0, 10.0))
def test_a_scaled_honest_update_scores_no_more_than_as_sent_or_the_median(honest, method, i, s):
    base, deltas, util, before = honest
    scaled = deltas.clone()
    scaled[i] *= s
    after = _score(method, base, scaled, util)
    b, a = before[method].scores, after.scores
    top = float(b.abs().max())
    # The only effect of the scale is on the common length r (the median norm): a row crossing
    # the median moves it by one order statistic, which lengthens every row alike.
    moved = after.info["length_radius"] / before[method].info["length_radius"] - 1.0
    assert 0.0 <= moved < 0.05
    others = torch.cat([a[:i], a[i + 1 :]])
    allowance = 2.0 * moved * top + 1e-5 * top
    assert float(a[i]) <= max(float(b[i]), float(others.median())) + allowance, (i, s, a, b)
    norms = deltas.norm(dim=1)
    if float(norms[i]) > float(norms.median()):  # the median does not move: the same game
        assert moved == 0.0
        assert torch.allclose(a, b, rtol=1e-3, atol=1e-5 * top), (a, b)


@pytest.mark.parametrize("method", METHODS)
def test_the_raw_game_credits_length_and_a_clip_pays_a_short_update_for_scaling(honest, method):
    base, deltas, util, _ = honest
    raw = _score(method, base, deltas, util, lengths="raw").scores
    scaled = deltas.clone()
    scaled[0] *= 4.0
    got = _score(method, base, scaled, util, lengths="raw").scores
    assert float(got[0]) > max(float(raw[0]), float(got[1:].median())), (got, raw)
    short = int(deltas.norm(dim=1).argmin())
    clip = _score(method, base, deltas, util, lengths="clip").scores
    scaled = deltas.clone()
    scaled[short] *= 2.0
    lifted = _score(method, base, scaled, util, lengths="clip").scores
    assert float(lifted[short]) > float(clip[short]) + 0.05 * float(clip.abs().max()), (lifted, clip)
