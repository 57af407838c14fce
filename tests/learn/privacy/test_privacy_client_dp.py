import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from deai.learn.privacy import AdaptiveClipping, ClientDP, PrivacyError
from deai.learn.privacy.client_dp import clip_updates


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 8), d=st.integers(1, 30), clip=st.floats(0.01, 10), seed=st.integers(0, 1000))
def test_clipping_bounds_norms_and_keeps_small_updates(n, d, clip, seed):
    u = torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 3
    clipped, norms = clip_updates(u, clip)
    assert (torch.linalg.vector_norm(clipped, dim=1) <= clip * (1 + 1e-9)).all()
    small = norms <= clip
    assert torch.equal(clipped[small], u[small])


def test_central_noise_has_the_calibrated_scale_and_is_seeded():
    dp = ClientDP(clip=1.0, noise_multiplier=2.0, mode="central", expected_count=10)
    updates = torch.zeros(10, 20000, dtype=torch.float64)
    out = dp.aggregate(updates, torch.Generator().manual_seed(0))
    assert out.std().item() == pytest.approx(2.0 / 10, rel=0.03)
    assert torch.equal(out, dp.aggregate(updates, torch.Generator().manual_seed(0)))


def test_distributed_noise_sums_to_the_central_level_and_local_is_full():
    gen = torch.Generator().manual_seed(1)
    dist = ClientDP(clip=1.0, noise_multiplier=1.5, mode="distributed", expected_count=16)
    rows = torch.stack([dist.privatize(torch.zeros(20000, dtype=torch.float64), gen) for _ in range(16)])
    assert rows.sum(0).std().item() == pytest.approx(1.5, rel=0.03)
    local = ClientDP(clip=1.0, noise_multiplier=1.5, mode="local")
    assert local.privatize(torch.zeros(20000, dtype=torch.float64), gen).std().item() == pytest.approx(
        1.5, rel=0.03
    )


def test_privatize_clips_before_noise():
    dp = ClientDP(clip=0.5, noise_multiplier=0.0, mode="local")
    out = dp.privatize(torch.full((100,), 10.0), torch.Generator())
    assert torch.linalg.vector_norm(out).item() == pytest.approx(0.5)


def test_bad_inputs_are_refused():
    with pytest.raises(PrivacyError, match="NaN"):
        clip_updates(torch.tensor([[1.0, float("nan")]]), 1.0)
    with pytest.raises(PrivacyError):
        clip_updates(torch.ones(3), 1.0)
    with pytest.raises(PrivacyError):
        ClientDP(clip=1.0, noise_multiplier=1.0, mode="telepathic")


def test_adaptive_clipping_tracks_the_target_quantile():
    gen = torch.Generator().manual_seed(0)
    ac = AdaptiveClipping(
        initial_clip=0.01, target_quantile=0.5, lr=0.2, noise_multiplier=1.0, expected_count=200
    )
    for _ in range(150):
        norms = torch.rand(200, generator=gen, dtype=torch.float64) * 4  # median 2
        ac.update(norms, gen)
    assert ac.clip == pytest.approx(2.0, rel=0.15)
    # The update noise is raised so the combined mechanism keeps noise multiplier 1.
    z_delta = ac.update_noise_multiplier
    assert z_delta > 1.0
    assert (z_delta**-2 + (2 * ac.count_noise_std) ** -2) ** -0.5 == pytest.approx(1.0)
    with pytest.raises(PrivacyError, match="too small"):
        AdaptiveClipping(noise_multiplier=5.0, count_noise_std=1.0)
    assert math.isfinite(ac.clip)
