"""Pairwise distances (Krum, Multi-Krum, Bulyan, NNM): exact to ``DISTANCE_RTOL`` whatever the rows.

The reference is the float64 sum of squared float64 differences of the float32 rows (no
cancellation: every term is non-negative). The property holds with one row scaled by 1e5..1e8,
with rows sharing a large common part, and with colluding copies far from everyone, for any chunk
size; the previous kernel (float32 Gram of the mean-centred rows) fails it by orders of magnitude.
"""

import tempfile
from pathlib import Path

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deai.core.tensorio import TensorFile, to_safetensors
from deai.learn.aggregators import FileRows, TensorRows, _ops
from deai.learn.aggregators._ops import DISTANCE_RTOL, pairwise_sq_dists


def exact(x: torch.Tensor) -> torch.Tensor:
    x64 = x.double()
    return ((x64[:, None, :] - x64[None, :, :]) ** 2).sum(-1)


def assert_exact(dist: torch.Tensor, x: torch.Tensor) -> None:
    ref = exact(x)
    assert dist.dtype == torch.float64 and dist.shape == ref.shape
    assert torch.equal(dist, dist.T)
    assert bool((dist.diagonal() == 0).all())
    assert bool((dist[ref == 0] == 0).all())  # identical rows: exactly zero
    rel = ((dist - ref).abs() / ref.clamp_min(1e-300))[ref > 0]
    # the reference itself is exact to ~d * 2^-53; the kernel promises DISTANCE_RTOL
    assert rel.numel() == 0 or float(rel.max()) <= 1.001 * DISTANCE_RTOL, float(rel.max())


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(2, 12),
    d=st.integers(1, 300),
    chunk=st.one_of(st.none(), st.integers(1, 64)),
    seed=st.integers(0, 10_000),
    exponent=st.floats(5.0, 8.0),
    huge=st.integers(0, 11),
    offset=st.sampled_from([0.0, 1e3, 1e6]),
    colluders=st.integers(0, 3),
)
def test_distances_are_exact_with_a_huge_row(n, d, chunk, seed, exponent, huge, offset, colluders):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=gen)
    x += offset * torch.randn(1, d, generator=gen)  # a large part every row shares
    far = 1e4 * torch.randn(d, generator=gen)
    for i in range(min(colluders, n)):  # copies (and near-copies) far from everyone
        x[n - 1 - i] = far + (1e-3 * torch.randn(d, generator=gen) if i % 2 else 0.0)
    x[huge % n] *= 10.0**exponent
    rows = TensorRows(x) if chunk is None else TensorRows(x, chunk=chunk)
    dist = pairwise_sq_dists(rows)
    assert_exact(dist, x)
    assert torch.equal(dist, pairwise_sq_dists(rows))  # same bits on every call


def test_the_mean_centred_float32_gram_fails_the_same_check():
    """What the property guards against: one row of 1e5 times the spread blurs every other distance."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(25, 1000, generator=gen)
    x[-1] *= 1e5
    gram = TensorRows(x).gram(centred=True)
    sq = gram.diagonal()
    old = (sq[:, None] + sq[None, :] - 2.0 * gram).clamp_min(0.0)
    ref = exact(x)
    honest = (old[:-1, :-1] - ref[:-1, :-1]).abs() / ref[:-1, :-1].clamp_min(1e-300)
    assert float(honest.max()) > 1.0  # the old kernel: errors larger than the distances themselves
    assert_exact(pairwise_sq_dists(TensorRows(x)), x)


def test_far_copies_take_the_exact_path_and_files_give_the_same_bits(monkeypatch):
    """Rows close together but far from the centre cannot be trusted to the Gram identity: those
    pairs, and only those, are recomputed from differences (identical copies at exactly zero). A
    file source with the same chunk gives the same bits."""
    recomputed: list[set[tuple[int, int]]] = []
    original = _ops._difference_sq_dists

    def spy(rows, i, j):
        recomputed.append(set(zip(i.tolist(), j.tolist(), strict=True)))
        return original(rows, i, j)

    monkeypatch.setattr(_ops, "_difference_sq_dists", spy)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(9, 200, generator=gen)
    assert_exact(pairwise_sq_dists(TensorRows(x, chunk=64)), x)
    assert recomputed == []  # ordinary rows: the Gram identity is trusted everywhere
    x[6:] = 1e3 + 1e-2 * torch.randn(3, 200, generator=gen)
    x[8] = x[7]
    dist = pairwise_sq_dists(TensorRows(x, chunk=64))
    assert_exact(dist, x)
    assert recomputed == [{(6, 7), (6, 8), (7, 8)}]
    assert float(dist[7, 8]) == 0.0 and float(dist[6, 7]) > 0.0
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for i, r in enumerate(x):
            p = Path(tmp) / f"u{i}.safetensors"
            p.write_bytes(to_safetensors({"delta": r.clone()}))
            files.append(TensorFile.open(p))
        try:
            assert torch.equal(pairwise_sq_dists(FileRows(files, chunk=64)), dist)
        finally:
            for fh in files:
                fh.close()
