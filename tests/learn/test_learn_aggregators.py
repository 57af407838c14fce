import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from deai.learn.aggregators import (
    AGGREGATORS,
    NNM,
    Bucketing,
    CenteredClipping,
    CoordinateMedian,
    FLTrust,
    FoolsGold,
    GeometricMedian,
    Krum,
    Mean,
    MultiKrum,
    RootGate,
    TrimmedMean,
    get_aggregator,
    parse_spec,
)
from deai.learn.errors import AssumptionViolated, BadUpdates, UnknownName

# Every spec with an f it accepts at n = 11.
SPECS = [
    ("mean", 0),
    ("median", 3),
    ("trimmed_mean", 3),
    ("geometric_median", 3),
    ("krum", 3),
    ("multi_krum", 3),
    ("bulyan", 2),
    ("centered_clipping", 3),
    ("fltrust", 3),
    ("foolsgold", 3),
    ("nnm+median", 3),
    ("bucketing(s=2)+median", 2),
    ("nnm+centered_clipping", 3),
    ("root_gate+centered_clipping", 2),
]


def call(agg, x, **ctx):
    if "fltrust" in repr(agg).lower() or "rootgate" in repr(agg).lower():
        ctx.setdefault("root_update", x[0])
    return agg(x, **ctx)


def test_hand_checked_values():
    x = torch.tensor([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0], [4.0, 1000.0], [-100.0, 0.0]])
    assert torch.equal(CoordinateMedian(f=2)(x), torch.tensor([2.0, 20.0]))
    assert torch.equal(CoordinateMedian(f=1)(x[:4]), torch.tensor([2.5, 25.0]))  # even n: mean of middles
    # trim 1 each side: column 0 keeps {1, 2, 3}, column 1 keeps {10, 20, 30}.
    assert torch.allclose(TrimmedMean(f=1)(x), torch.tensor([2.0, 20.0]))
    assert torch.allclose(Mean()(x), x.mean(0))
    w = torch.tensor([1.0, 0.0, 0.0, 0.0, 3.0])
    assert torch.allclose(Mean()(x, w), (x[0] + 3 * x[4]) / 4)


def test_krum_picks_the_tight_cluster_by_hand():
    x = torch.tensor([[0.0], [0.1], [0.2], [0.35], [10.0], [11.0], [50.0]])
    # f=2: sum over the n - f - 2 = 3 nearest others. Row 0: .01+.04+.1225; row 1: .01+.01+.0625;
    # row 2: .01+.0225+.04 = .0725 (lowest); row 3: .0225+.0625+.1225.
    k = Krum(f=2)
    assert torch.equal(k(x), torch.tensor([0.2]))
    assert k.selected == [2]
    mk = MultiKrum(f=2, m=4)
    assert torch.allclose(mk(x), torch.tensor([0.1625]))
    assert sorted(mk.selected) == [0, 1, 2, 3]


def test_geometric_median_of_collinear_points_is_the_median():
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [3.0, 0.0], [100.0, 0.0]])
    out = GeometricMedian(f=2, max_iter=500, tol=1e-9)(x)
    assert torch.allclose(out, torch.tensor([2.0, 0.0]), atol=1e-3)


def test_geometric_median_of_a_triangle_is_the_fermat_point():
    # Equilateral triangle: the Fermat point is the centroid.
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.5, math.sqrt(3) / 2]])
    out = GeometricMedian(f=1, max_iter=1000, tol=1e-10)(x)
    assert torch.allclose(out, x.mean(0), atol=1e-4)


def test_centered_clipping_rule_by_hand():
    cc = CenteredClipping(f=1, tau=1.0)
    x = torch.tensor([[3.0, 0.0], [0.0, 0.5], [0.0, 0.0]])
    # Centre 0: clip (3,0) to (1,0); the others are inside the radius. Mean = (1, 0.5) / 3.
    out = cc(x)
    assert torch.allclose(out, torch.tensor([1.0 / 3, 0.5 / 3]))
    # Stateful: the next call clips around the previous output.
    out2 = cc(x)
    diff = x - out
    scale = (1.0 / diff.norm(dim=1)).clamp(max=1.0)
    assert torch.allclose(out2, out + (scale[:, None] * diff).mean(0))
    cc.reset()
    assert torch.allclose(cc(x), out)


def test_fltrust_rule_by_hand():
    g0 = torch.tensor([1.0, 0.0])
    x = torch.tensor([[2.0, 0.0], [0.0, 5.0], [-3.0, 0.0], [1.0, 1.0]])
    out = FLTrust()(x, root_update=g0)
    # Trust: 1, 0, 0 (negative cosine cut), 1/sqrt2; each rescaled to |g0| = 1.
    t = torch.tensor([1.0, 0.0, 0.0, 1 / math.sqrt(2)])
    unit = x / x.norm(dim=1, keepdim=True)
    assert torch.allclose(out, (t[:, None] * unit).sum(0) / t.sum())
    with pytest.raises(AssumptionViolated, match="root update"):
        FLTrust()(x)
    with pytest.raises(BadUpdates, match="zero"):
        FLTrust()(x, root_update=torch.zeros(2))


def test_root_gate_rule_by_hand():
    g0 = torch.tensor([1.0, 0.0])
    x = torch.tensor([[2.0, 0.0], [0.0, 5.0], [-3.0, 0.0], [1.0, 1.0]])
    # cosines 1, 0, -1, 1/sqrt2: two rows point along g0, but n - f = 3 rows are always kept, so the
    # best of the rest (row 1, cosine 0) joins them; the row stepping away from g0 (row 2) is dropped.
    gate = RootGate(CoordinateMedian(f=1))
    assert torch.equal(gate(x, root_update=g0), torch.tensor([1.0, 1.0]))  # median of rows 0, 1, 3
    assert gate.kept.tolist() == [0, 1, 3]
    with pytest.raises(AssumptionViolated, match="root update"):
        gate(x)
    with pytest.raises(BadUpdates, match="zero"):
        gate(x, root_update=torch.zeros(2))
    with pytest.raises(BadUpdates, match="shape"):
        gate(x, root_update=torch.zeros(3))
    with pytest.raises(BadUpdates, match="finite"):
        gate(x, root_update=torch.tensor([1.0, float("nan")]))


def test_root_gate_drops_sign_flipped_rows_and_keeps_all_when_no_attack():
    gen = torch.Generator().manual_seed(0)
    mean = torch.randn(500, generator=gen)
    honest = mean + 0.5 * torch.randn(20, 500, generator=gen)
    root = mean + 0.5 * torch.randn(500, generator=gen)
    gate = get_aggregator("root_gate+centered_clipping", f=5)
    gate(torch.cat([-honest[:5], honest[5:]]), root_update=root)
    assert gate.kept.tolist() == list(range(5, 20))
    gate.reset()
    gate(honest, root_update=root)  # all rows agree with the root: none is dropped
    assert gate.kept.tolist() == list(range(20))


def test_root_gate_checks_the_inner_assumption_at_n_minus_f():
    x = torch.randn(8, 4)
    get_aggregator("root_gate+centered_clipping", f=2)(x, root_update=x.mean(0))  # inner (6, 2)
    with pytest.raises(AssumptionViolated, match="centered_clipping"):
        get_aggregator("root_gate+centered_clipping", f=3)(x, root_update=x.mean(0))  # inner (5, 3)


def test_foolsgold_downweights_sybils_and_keeps_distinct_providers():
    torch.manual_seed(0)
    honest = torch.randn(6, 50)
    sybil = torch.randn(1, 50).expand(4, -1) + 0.01 * torch.randn(4, 50)
    fg = FoolsGold()
    for _ in range(3):
        fg(torch.cat([honest, sybil]))
    w = fg.weights
    assert bool((w[6:] < 0.05).all()), w
    assert bool((w[:6] > 0.5).all()), w


def test_nnm_mixes_nearest_neighbours():
    x = torch.tensor([[0.0], [1.0], [2.0], [100.0], [101.0]])
    nnm = NNM(Mean(), f=2)
    # n - f = 3 nearest of each row (itself included).
    mixed = nnm.transform(x)
    assert torch.allclose(mixed[:, 0], torch.tensor([1.0, 1.0, 1.0, 203 / 3, 203 / 3]))


def test_bucketing_averages_buckets_and_is_reproducible():
    x = torch.arange(12.0).reshape(6, 2)
    b1, b2 = Bucketing(Mean(), s=2, seed=3), Bucketing(Mean(), s=2, seed=3)
    t1, t2 = b1.transform(x), b2.transform(x)
    assert torch.equal(t1, t2) and t1.shape == (3, 2)
    assert torch.allclose(t1.mean(0), x.mean(0))  # equal buckets: the mean is preserved
    assert torch.equal(b1.transform(x, bucket_seed=9), b2.transform(x, bucket_seed=9))


@pytest.mark.parametrize(("spec", "f"), SPECS)
def test_equal_inputs_give_that_input(spec, f):
    v = torch.randn(1, 30)
    x = v.expand(11, -1).clone()
    out = call(get_aggregator(spec, f=f), x)
    assert torch.allclose(out, v[0], atol=1e-5)


@pytest.mark.parametrize(("spec", "f"), [s for s in SPECS if "bucketing" not in s[0]])
@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_permutation_invariance(spec, f, seed):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(11, 20, generator=gen)
    perm = torch.randperm(11, generator=gen)
    root = torch.randn(20, generator=gen)
    a, b = get_aggregator(spec, f=f), get_aggregator(spec, f=f)
    out = a(x, root_update=root)
    out_p = b(x[perm], root_update=root, client_ids=perm)
    assert torch.allclose(out, out_p, atol=1e-5)


@pytest.mark.parametrize(
    ("spec", "f"),
    [
        ("median", 4),
        ("trimmed_mean", 4),
        ("geometric_median", 4),
        ("krum", 4),
        ("multi_krum", 4),
        ("bulyan", 2),
    ],
)
def test_breakdown_bounded_under_huge_outliers(spec, f):
    torch.manual_seed(1)
    n = 11
    honest = torch.rand(n - f, 16)  # in [0, 1)
    bad = torch.full((f, 16), 1e9)
    out = get_aggregator(spec, f=f)(torch.cat([bad, honest]))
    assert float(out.abs().max()) <= 1.0 + 1e-4  # stays within the honest range


def test_mean_breaks_with_one_outlier():
    x = torch.cat([torch.zeros(10, 4), torch.full((1, 4), 1e9)])
    assert float(Mean()(x).max()) > 1e7


def test_centered_clipping_bounded_under_outliers():
    honest = torch.rand(8, 16)
    bad = torch.full((3, 16), 1e9)
    cc = CenteredClipping(f=3)
    out = cc(torch.cat([bad, honest]))
    assert float(out.norm()) < 10.0


@pytest.mark.parametrize(
    ("spec", "n", "f"),
    [
        ("mean", 5, 1),
        ("median", 4, 2),
        ("trimmed_mean", 6, 3),
        ("geometric_median", 2, 1),
        ("krum", 6, 2),
        ("multi_krum", 4, 1),
        ("bulyan", 10, 2),
        ("centered_clipping", 4, 2),
        ("foolsgold", 1, 0),
        ("nnm+median", 6, 3),
        ("bucketing(s=2)+median", 20, 5),
    ],
)
def test_refuses_violated_assumptions(spec, n, f):
    agg = get_aggregator(spec, f=f)
    with pytest.raises(AssumptionViolated, match="needs"):
        agg(torch.randn(n, 3))


@pytest.mark.parametrize("spec", ["mean", "median", "krum", "nnm+centered_clipping", "geometric_median"])
def test_rejects_non_finite_and_malformed(spec):
    agg = get_aggregator(spec, f=0 if spec == "mean" else 1)
    x = torch.randn(7, 5)
    for bad_value in (float("nan"), float("inf"), -float("inf")):
        y = x.clone()
        y[4, 2] = bad_value
        with pytest.raises(BadUpdates, match="rows 4"):
            agg(y)
    with pytest.raises(BadUpdates, match=r"\[n, d\]"):
        agg(torch.randn(7))
    with pytest.raises(BadUpdates, match=r"\[n, d\]"):
        agg(torch.randn(2, 3, 4))
    with pytest.raises(BadUpdates, match="floating"):
        agg(torch.ones(7, 5, dtype=torch.int64))
    with pytest.raises(BadUpdates, match="weights"):
        agg(x, torch.ones(6))
    with pytest.raises(BadUpdates, match="weights"):
        agg(x, -torch.ones(7))
    with pytest.raises(BadUpdates, match="tensor"):
        agg([[1.0]])


def test_large_finite_values_are_not_mistaken_for_non_finite():
    # The column sums overflow to inf, but every entry is finite: the median must still run.
    x = torch.full((5, 3), 3e38)
    assert torch.equal(CoordinateMedian(f=2)(x), torch.full((3,), 3e38))


def test_spec_parsing_and_registry():
    assert parse_spec("bucketing(s=2)+trimmed_mean(trim=3)") == [
        ("bucketing", {"s": 2}),
        ("trimmed_mean", {"trim": 3}),
    ]
    agg = get_aggregator("bucketing(s=3, seed=1)+nnm+krum", f=1)
    assert isinstance(agg, Bucketing) and agg.s == 3 and isinstance(agg.inner, NNM)
    assert isinstance(agg.inner.inner, Krum) and agg.inner.inner.f == 1
    assert isinstance(get_aggregator("cc(tau=1e+3)"), CenteredClipping)
    assert get_aggregator("cc(tau=1e+3)").tau == 1000.0
    with pytest.raises(UnknownName, match="unknown aggregator"):
        get_aggregator("nope")
    with pytest.raises(UnknownName, match="pre-aggregator"):
        get_aggregator("median+nnm")
    with pytest.raises(UnknownName, match="not a pre-aggregator"):
        get_aggregator("median+krum")
    with pytest.raises(UnknownName, match="bad arguments"):
        get_aggregator("krum(1)")
    with pytest.raises(UnknownName, match="bad arguments"):
        get_aggregator("krum(f=__import__('os'))")
    with pytest.raises(ValueError, match="twice"):
        get_aggregator("trimmed_mean(trim=2)", f=1, trim=3)
    assert {"median", "krum", "bulyan", "fltrust", "foolsgold", "centered_clipping"} <= set(
        AGGREGATORS.names()
    )


def test_trimmed_mean_refuses_trim_below_f():
    with pytest.raises(ValueError, match="at least f"):
        TrimmedMean(f=3, trim=1)


def test_median_matches_torch_quantile_on_random_data():
    x = torch.randn(10, 5000)
    assert torch.allclose(CoordinateMedian(f=4)(x), torch.quantile(x, 0.5, dim=0), atol=1e-6)
    s = x.sort(0).values
    assert torch.allclose(TrimmedMean(f=2)(x), s[2:8].mean(0), atol=1e-6)


def test_aggregators_are_deterministic():
    x = torch.randn(12, 300)
    for spec, f in SPECS:
        a = call(get_aggregator(spec, f=f), x)
        b = call(get_aggregator(spec, f=f), x)
        assert torch.equal(a, b), spec


def test_foolsgold_rejects_duplicate_ids():
    with pytest.raises(ValueError, match="once"):
        FoolsGold()(torch.randn(3, 4), client_ids=torch.tensor([0, 0, 1]))
