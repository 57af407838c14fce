"""Every rule deai shares with ByzFL, checked against ByzFL's stored outputs on fixed inputs.

``data/byzfl_golden.npz`` holds float32 inputs (IID rows, non-IID clusters, an outlier cluster, one
huge row of 1e5 or 1e8 times the honest spread, and a huge row added to a colluding group) and the
outputs ByzFL 0.0.11 computed on their exact float64 copies; ``data/make_byzfl_golden.py``
regenerates them (ByzFL is not needed here). Parameters are mapped to ByzFL's definitions: ByzFL's
Krum with ``f`` counts ``n - f - 1`` neighbours, deai's ``krum(f - 1)``; its Multi-Krum averages
``n - f`` rows; its centered clipping starts at zero like a fresh deai one.

Tolerance, calibrated: deai computes in float32 and ByzFL's reference is float64, so every output
coordinate must lie within ``8 * eps32 * S`` of the reference, ``S`` the largest magnitude of that
output (of that output row for NNM's mixed rows), at least 1 (the inputs are of order one). The
largest error measured was ``2.1 * eps32 * S`` (NNM on the huge-row-and-colluders case); a rule
that picked another row or dropped another value would miss by orders of magnitude more. Krum
returns one input row, so it must match exactly.

The huge-row cases also run on fresh seeds without ByzFL: Krum picks the winner of the exact
float64 Krum scores every time, and Multi-Krum keeps none of the colluders of :class:`HugeRow`.
"""

from pathlib import Path

import numpy as np
import pytest
import torch

from deai.learn.aggregators import (
    NNM,
    Bucketing,
    CenteredClipping,
    CoordinateMedian,
    GeometricMedian,
    Krum,
    Mean,
    MultiKrum,
    TrimmedMean,
)
from deai.learn.attacks import HugeRow

GOLDEN = Path(__file__).parent / "data" / "byzfl_golden.npz"
EPS32 = float(np.finfo(np.float32).eps)
TOL = 8.0


def load_golden() -> dict[str, np.ndarray]:
    """The stored arrays, bounded before use: no pickles, a small file, float arrays finite."""
    if GOLDEN.stat().st_size > 4 << 20:
        raise ValueError("golden file unexpectedly large")
    with np.load(GOLDEN, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    for key, a in arrays.items():
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            raise ValueError(f"{key} is not finite")
    return arrays


GOLD = load_golden()
CASES = [str(c) for c in GOLD["cases"]]


def case(name: str) -> tuple[torch.Tensor, int]:
    x, f = GOLD[f"{name}/x"], int(GOLD[f"{name}/f"])
    assert x.dtype == np.float32 and x.ndim == 2 and 0 < x.shape[0] <= 64 and 0 < x.shape[1] <= 4096
    assert f >= 1 and 2 * f < x.shape[0]
    return torch.from_numpy(x.copy()), f


def assert_close(ours: torch.Tensor, name: str, rule: str) -> None:
    ref = GOLD[f"{name}/{rule}"]
    got = ours.double().numpy()
    assert got.shape == ref.shape, (rule, got.shape, ref.shape)
    scale = np.maximum(1.0, np.abs(ref).max(axis=-1, keepdims=True))
    err = np.abs(got - ref) / (EPS32 * scale)
    assert err.max() <= TOL, f"{name}/{rule}: error {err.max():.1f} eps32 x scale (tolerance {TOL})"


def test_golden_file_covers_the_cases():
    assert len(CASES) >= 8
    assert {"huge_row_1e+05_n25_d1000", "huge_row_1e+08_n25_d1000", "huge_row_colluders_n25_d1000"} <= set(
        CASES
    )


@pytest.mark.parametrize("name", CASES)
def test_coordinate_rules_match_byzfl(name):
    x, f = case(name)
    assert_close(Mean()(x), name, "mean")
    assert_close(CoordinateMedian(f)(x), name, "median")
    assert_close(TrimmedMean(f)(x), name, "trimmed_mean")


@pytest.mark.parametrize("name", CASES)
def test_krum_and_multi_krum_match_byzfl(name):
    x, f = case(name)
    n = x.shape[0]
    # Krum returns one input row: it must be exactly ByzFL's choice.
    assert np.array_equal(Krum(f - 1)(x).double().numpy(), GOLD[f"{name}/krum"])
    assert_close(MultiKrum(f - 1, m=n - f)(x), name, "multi_krum")


@pytest.mark.parametrize("name", CASES)
def test_nnm_and_its_compositions_match_byzfl(name):
    x, f = case(name)
    n = x.shape[0]
    assert_close(NNM(Mean(), f).transform(x), name, "nnm")
    assert_close(NNM(TrimmedMean(f), f)(x), name, "nnm_trimmed_mean")
    assert_close(NNM(MultiKrum(f - 1, m=n - f), f)(x), name, "nnm_multi_krum")


@pytest.mark.parametrize("name", CASES)
def test_geometric_median_and_centered_clipping_match_byzfl(name):
    x, f = case(name)
    nu = float(GOLD["gm_nu"])
    assert_close(GeometricMedian(f, max_iter=3000, tol=1e-8, nu=nu)(x), name, "geometric_median")
    assert_close(CenteredClipping(f, tau=1.0, iters=3)(x), name, "centered_clipping_tau1_iters3")
    assert_close(CenteredClipping(f, tau=10.0, iters=1)(x), name, "centered_clipping_tau10_iters1")


@pytest.mark.parametrize("name", CASES)
def test_bucketing_matches_byzfl_on_its_shuffle(name):
    """ByzFL shuffles with its own RNG (the stored permutation): the rows are laid out so that deai's
    seeded shuffle, read off one-hot probe rows, puts the same rows in every bucket."""
    x, _f = case(name)
    n, s = x.shape[0], int(GOLD[f"{name}/bucketing_s"])
    perm = GOLD[f"{name}/bucketing_perm"]
    assert sorted(perm.tolist()) == list(range(n))
    bucketing = Bucketing(Mean(), s=s)
    members = bucketing.transform(torch.eye(n), bucket_seed=5) > 0  # [buckets, n]: who is in which
    laid_out = torch.empty_like(x)
    for j in range(members.shape[0]):
        ours = members[j].nonzero().flatten()
        theirs = torch.from_numpy(perm[j * s : (j + 1) * s].copy())
        assert ours.numel() == theirs.numel()
        laid_out[ours] = x[theirs]
    assert_close(bucketing.transform(laid_out, bucket_seed=5), name, "bucketing")


def exact_krum_scores(x: torch.Tensor, f: int) -> torch.Tensor:
    x64 = x.double()
    dist = ((x64[:, None, :] - x64[None, :, :]) ** 2).sum(-1)
    dist.fill_diagonal_(float("inf"))
    return dist.topk(x.shape[0] - f - 2, dim=1, largest=False).values.sum(1)


@pytest.mark.parametrize("scale", [1e4, 1e5, 1e8])
def test_krum_picks_the_true_winner_beside_one_huge_row(scale):
    n, f, d = 25, 5, 1000
    for seed in range(8):
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(n, d, generator=g)
        x[seed % n] = scale * torch.randn(d, generator=g)
        krum = Krum(f)
        krum(x)
        assert krum.selected == [int(exact_krum_scores(x, f).argmin())], (scale, seed)


@pytest.mark.parametrize("scale", [1e5, 1e6, 1e8])
def test_multi_krum_keeps_none_of_the_huge_row_colluders(scale):
    n, f, d = 25, 5, 1000
    for seed in range(8):
        g = torch.Generator().manual_seed(seed)
        honest = torch.randn(n - f, d, generator=g)
        byz = HugeRow(scale=scale, z=3.0).craft(honest, None, f, g)
        multi = MultiKrum(f)
        multi(torch.cat([honest, byz]))
        assert max(multi.selected) < n - f, (scale, seed, multi.selected)


def test_huge_row_attack_follows_its_definition():
    honest = torch.tensor([[1.0, 0.0], [3.0, 2.0], [2.0, 4.0]])
    mu, sd = honest.mean(0), honest.std(0)
    byz = HugeRow(scale=1e5, z=3.0).craft(honest, None, 3, torch.Generator().manual_seed(0))
    assert torch.allclose(byz[0], mu + 1e5 * sd) and torch.equal(byz[1], byz[2])
    assert torch.allclose(byz[1], mu + 3.0 * sd)
    capped = HugeRow(scale=1e38).craft(honest, None, 1, torch.Generator())
    assert bool(torch.isfinite(torch.cat([honest, capped]).mean(0)).all())  # clipped: the mean stays finite
    with pytest.raises(ValueError):
        HugeRow(scale=float("inf"))
