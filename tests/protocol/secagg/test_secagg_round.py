"""Exact recovery of the sum under dropouts, determinism, and bandwidth of the SecAgg+ round."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deai.core.accounts import Account
from deai.protocol.secagg import SecAggConfig, run_round
from deai.protocol.secagg.graph import default_degree, neighbours
from deai.protocol.secagg.messages import encode
from deai.protocol.secagg.phases import Phase
from deai.protocol.secagg.ring import Ring

ACCOUNTS = [Account.from_seed("secagg-test", i) for i in range(24)]
PHASES = [Phase.ADVERTISE, Phase.SHARE, Phase.MASKED, Phase.CONSISTENCY, Phase.UNMASK]


def config(n, d, **kw):
    return SecAggConfig(tuple(a.address for a in ACCOUNTS[:n]), d, **kw)


def exact_expected(cfg, x, included):
    """The ring sum of the included providers' quantized updates, decoded: what the round must return."""
    total = np.zeros(cfg.dim, dtype=cfg.ring.dtype)
    for u in included:
        total += cfg.ring.encode(x[u])[0]
    return cfg.ring.decode(total, len(included))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(min_value=6, max_value=16),
    seed=st.integers(min_value=0, max_value=2**16),
    data=st.data(),
)
def test_sum_is_exact_under_dropouts_at_any_phase(n, seed, data):
    cfg = config(n, 37, clip=2.0, tag=f"prop-{seed}")
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1.0, (n, cfg.dim))
    # Up to a third of the providers drop, each at a phase of its own.
    k = data.draw(st.integers(min_value=0, max_value=n // 3))
    who = rng.choice(n, size=k, replace=False)
    drop = {int(u): data.draw(st.sampled_from(PHASES)) for u in who}
    result, _ = run_round(cfg, x, ACCOUNTS, drop=drop, seed=seed)
    expected_in = tuple(
        u for u in range(n) if drop.get(u) not in (Phase.ADVERTISE, Phase.SHARE, Phase.MASKED)
    )
    assert result.included == expected_in
    np.testing.assert_array_equal(result.total, exact_expected(cfg, x, expected_in))
    clipped_sum = np.clip(x[list(expected_in)], -cfg.clip, cfg.clip).sum(0)
    assert np.abs(result.total - clipped_sum).max() <= result.error_bound


def test_sparse_graph_recovers_with_a_third_dropped_after_sending():
    n = 24
    cfg = config(n, 20_000, degree=16, tag="sparse")
    assert cfg.degree == 16 < n - 1 and cfg.threshold == 9
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, (n, cfg.dim)).astype(np.float32)
    drop = {int(u): Phase.MASKED for u in rng.choice(n, 8, replace=False)}
    result, stats = run_round(cfg, x, ACCOUNTS, drop=drop, seed=3)
    assert len(result.included) == 16
    np.testing.assert_array_equal(result.total, exact_expected(cfg, x, result.included))
    # Bandwidth: everything a provider sends, over the plain float32 update.
    assert max(stats.sent_bytes[u] for u in result.included) / (4 * cfg.dim) < 1.5


def test_same_seed_same_messages_and_sum():
    cfg = config(6, 20, tag="det")
    x = np.random.default_rng(0).normal(size=(6, 20))
    r1, s1 = run_round(cfg, x, ACCOUNTS, seed=7)
    r2, s2 = run_round(cfg, x, ACCOUNTS, seed=7)
    r3, _ = run_round(cfg, x, ACCOUNTS)  # OS randomness: different keys, same sum
    np.testing.assert_array_equal(r1.total, r2.total)
    np.testing.assert_array_equal(r1.total, r3.total)
    assert s1.sent_bytes == s2.sent_bytes


def test_clipping_is_counted_and_sum_stays_in_range():
    cfg = config(5, 10, clip=0.5, tag="clip")
    x = np.full((5, 10), 3.0)
    result, stats = run_round(cfg, x, ACCOUNTS, seed=1)
    assert stats.clipped == 50
    np.testing.assert_allclose(result.total, 2.5, atol=result.error_bound)


def test_graph_is_symmetric_regular_and_recomputable():
    n, k = 50, default_degree(50)
    g = neighbours(n, k, b"seed")
    assert g == neighbours(n, k, b"seed") and g != neighbours(n, k, b"other")
    for u, nb in enumerate(g):
        assert len(nb) == k and u not in nb
        assert all(u in g[v] for v in nb)
    assert default_degree(100) == 40 and default_degree(10_000) < 100


@pytest.mark.parametrize("bits", [32, 64])
def test_ring_cannot_wrap_for_n_clipped_updates(bits):
    ring = Ring.for_sum(100, 1.0, bits)
    worst = np.ones(7)
    total = np.zeros(7, dtype=ring.dtype)
    for _ in range(100):
        total += ring.encode(worst)[0]
    np.testing.assert_array_equal(ring.decode(total, 100), 100.0)
    total = np.zeros(7, dtype=ring.dtype)
    for _ in range(100):
        total += ring.encode(-worst)[0]
    np.testing.assert_array_equal(ring.decode(total, 100), -100.0)


def test_wire_size_matches_encoding():
    cfg = config(4, 9, tag="wire")
    from deai.protocol.secagg import SecAggClient
    from deai.protocol.secagg.messages import wire_size

    c = SecAggClient(cfg, 0, ACCOUNTS[0], seed=b"0")
    msg = c.start(np.zeros(9))
    assert wire_size(msg, cfg) == len(encode(msg, cfg))
