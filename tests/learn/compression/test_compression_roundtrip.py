"""Round trips, exactness, error bounds, determinism and sizes of the compressors."""

import math

import pytest
import torch

from deai.core.tensorio import from_safetensors, tensor_digest, to_safetensors
from deai.learn.compression import (
    COMPRESSORS,
    BadCompressed,
    BadCompressionSpec,
    Compressor,
    compressed_bytes,
    compression_ratio,
    decompress,
    get_compressor,
)
from deai.learn.compression._bits import _mix_int, mix64, pack_codes, unpack_codes
from deai.learn.compression.randomk import random_support
from deai.learn.errors import UnknownName

SPECS = [
    "none",
    "topk(ratio=0.05)",
    "randomk(ratio=0.05)",
    "chunked_topk(ratio=0.05, chunk=64)",
    "int8",
    "int4(chunk=32)",
    "int2(chunk=64, scale_dtype='float32')",
    "topk(ratio=0.1)+int2",
    "randomk(ratio=0.1)+int8(rounding='stochastic')",
    "chunked_topk(ratio=0.02, chunk=4096)+int2(rounding='stochastic')",
    "topk(ratio=0.01)+int4(chunk=64, scale_dtype='float32')",
]


def vec(d: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(d, generator=torch.Generator().manual_seed(seed))


def roundtrip(spec: str, x: torch.Tensor, seed: int = 3, gen_seed: int = 1) -> tuple[dict, torch.Tensor]:
    c = get_compressor(spec)
    wire = c.compress(x, seed=seed, generator=torch.Generator().manual_seed(gen_seed))
    return wire, c.decompress(wire, x.numel())


def test_registry_and_canonical_spec():
    assert {"none", "topk", "randomk", "chunked_topk", "int8", "int4", "int2"} <= set(COMPRESSORS.names())
    for spec in SPECS:
        c = get_compressor(spec)
        assert get_compressor(c.spec) == c
        assert get_compressor(c) is c
    assert get_compressor("TopK(ratio=0.01) + INT2").spec == (
        "topk(ratio=0.01)+int2(chunk=256, rounding='nearest', scale_dtype='float16')"
    )


@pytest.mark.parametrize(
    "spec",
    [
        "int2+topk",
        "topk+randomk",
        "int8+int2",
        "none+int8",
        "topk(ratio=0)",
        "topk(ratio=1.5)",
        "topk(ratio=True)",
        "chunked_topk(chunk=70000)",
        "int8(chunk=0)",
        "int8(rounding='up')",
        "int8(scale_dtype='bfloat16')",
        "topk(k=3)",
        "",
        "x" * 600,
    ],
)
def test_bad_specs_refused(spec):
    with pytest.raises(BadCompressionSpec):
        get_compressor(spec)


def test_unknown_name():
    with pytest.raises(UnknownName):
        get_compressor("topk+int3")


@pytest.mark.parametrize("spec", SPECS)
def test_every_scheme_round_trips_through_safetensors(spec):
    x = vec(5000)
    wire, y = roundtrip(spec, x)
    assert y.dtype == torch.float32 and y.shape == x.shape
    back = from_safetensors(to_safetensors(wire))
    c = get_compressor(spec)
    assert torch.equal(c.decompress(back, 5000), y)
    assert c.check(back, 5000).d == 5000
    assert compressed_bytes(wire) <= c.max_bytes(5000)
    assert compression_ratio(wire, 5000) == pytest.approx(4 * 5000 / compressed_bytes(wire))


@pytest.mark.parametrize(
    "spec", ["none", "topk(ratio=1)", "randomk(ratio=1)", "chunked_topk(ratio=1, chunk=100)"]
)
def test_exact_schemes(spec):
    x = vec(1234)
    _, y = roundtrip(spec, x)
    assert torch.equal(y, x)


def test_topk_keeps_the_largest_magnitudes_and_breaks_ties_low():
    x = torch.tensor([0.5, -3.0, 1.0, 2.0, -2.0, 0.1, 2.0, 0.0])
    c = get_compressor("topk(ratio=0.5)")  # k = 4: -3 and the three entries of magnitude 2
    y = c.decompress(c.compress(x), 8)
    assert y.tolist() == [0, -3.0, 0, 2.0, -2.0, 0, 2.0, 0]
    c = get_compressor("topk(ratio=0.375)")  # k = 3: -3 and the two lowest-index of the tied 2s
    assert c.decompress(c.compress(x), 8).tolist() == [0, -3.0, 0, 2.0, -2.0, 0, 0, 0]
    big = vec(200_003)
    c = get_compressor("topk(ratio=0.001)")
    y = c.decompress(c.compress(big), big.numel())
    k = math.ceil(0.001 * big.numel())
    assert int((y != 0).sum()) == k
    assert torch.equal(y[y != 0].abs().sort().values, big.abs().topk(k).values.sort().values)


def test_chunked_topk_takes_each_chunks_share():
    x = vec(1000, seed=4)
    c = get_compressor("chunked_topk(ratio=0.1, chunk=64)")  # 7 per chunk; last chunk of 40 keeps 7
    y = c.decompress(c.compress(x), 1000)
    for lo in range(0, 1000, 64):
        part, orig = y[lo : lo + 64], x[lo : lo + 64]
        assert int((part != 0).sum()) == 7
        assert torch.equal(part[part != 0].abs().sort().values, orig.abs().topk(7).values.sort().values)
    tiny = get_compressor("chunked_topk(ratio=0.5, chunk=8)")  # last chunk of 2 < 4 per chunk: both kept
    z = vec(10, seed=5)
    assert torch.equal(tiny.decompress(tiny.compress(z), 10)[8:], z[8:])


def test_randomk_support_from_the_seed_alone():
    x = vec(10_000)
    c = get_compressor("randomk(ratio=0.01)")
    a, b, other = c.compress(x, seed=7), c.compress(-x, seed=7), c.compress(x, seed=8)
    assert set(a) == {"header", "values"}  # no index travels
    ya, yb, yo = (c.decompress(w, 10_000) for w in (a, b, other))
    assert torch.equal(ya != 0, yb != 0) and not torch.equal(ya != 0, yo != 0)
    assert torch.equal(ya[ya != 0], x[ya != 0])
    assert c.check(a, 10_000, seed=7).seed == 7
    with pytest.raises(BadCompressed, match="seed"):
        c.check(a, 10_000, seed=8)
    with pytest.raises(BadCompressionSpec):
        c.compress(x)
    # pinned: the support is defined by integer arithmetic, not by a torch RNG stream
    assert random_support(20, 4, 0).tolist() == GOLDEN_SUPPORT
    support = random_support(100_000, 1000, 3)
    assert support.unique().numel() == 1000 and bool((support[1:] > support[:-1]).all())
    counts = torch.bincount(support // 10_000, minlength=10)  # roughly uniform over the range
    assert int(counts.min()) > 60 and int(counts.max()) < 140


GOLDEN_SUPPORT = [4, 5, 6, 9]  # random_support(20, 4, 0) when the format was defined


def test_mix64_matches_a_reference():
    z = torch.tensor([0, 1, 2, -1, 2**62, -(2**63), 123456789], dtype=torch.int64)
    for salt in (0, 5, 2**63 - 1):
        ref = [_mix_int(int(v) ^ _mix_int(salt)) for v in z]
        assert mix64(z, salt).tolist() == ref


@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.parametrize("n", [0, 1, 3, 4, 5, 17])
def test_pack_unpack(bits, n):
    codes = torch.randint(0, 2**bits, (n,), generator=torch.Generator().manual_seed(n), dtype=torch.uint8)
    packed = pack_codes(codes, bits)
    assert packed.numel() == math.ceil(n * bits / 8)
    back, clean = unpack_codes(packed, bits, n)
    assert clean and torch.equal(back, codes)


@pytest.mark.parametrize("name,levels", [("int8", 127), ("int4", 7)])
@pytest.mark.parametrize("scale_dtype", ["float16", "float32"])
def test_values_on_the_grid_are_exact(name, levels, scale_dtype):
    step = 2.0**-7
    q = torch.randint(-levels, levels + 1, (640,), generator=torch.Generator().manual_seed(0))
    q[::64] = levels  # each chunk of 64 reaches the top level, so its scale is exactly `step`
    x = q.to(torch.float32) * step
    _, y = roundtrip(f"{name}(chunk=64, scale_dtype={scale_dtype!r})", x)
    assert torch.equal(y, x)
    grid2 = torch.tensor([-1.5, -0.5, 0.5, 1.5] * 16) * 0.25
    _, y2 = roundtrip("int2(chunk=16)", grid2)
    assert torch.equal(y2, grid2)


@pytest.mark.parametrize("name", ["int8", "int4", "int2"])
@pytest.mark.parametrize("rounding", ["nearest", "stochastic"])
@pytest.mark.parametrize("scale_dtype", ["float16", "float32"])
def test_quantization_error_bound(name, rounding, scale_dtype):
    x = vec(1000, seed=2) * torch.linspace(0.01, 5, 1000)  # chunks of very different ranges
    x[100:200] = 0  # an all-zero chunk
    c = get_compressor(f"{name}(chunk=100, rounding={rounding!r}, scale_dtype={scale_dtype!r})")
    wire = c.compress(x, generator=torch.Generator().manual_seed(0))
    y = c.decompress(wire, 1000)
    assert c.quantizer is not None
    scale = wire["scales"].to(torch.float32).repeat_interleave(100)
    bound = c.quantizer.max_error(scale) * (1 + 1e-6) + 1e-30
    assert bool(((x - y).abs() <= bound).all())
    assert bool((y[100:200] == 0).all())
    # the scale is the chunk's max over the half-range, rounded up (never down) to float16
    amax = x.view(10, 100).abs().amax(1)
    levels = c.quantizer.levels
    assert bool((wire["scales"].to(torch.float32) * levels >= amax * (1 - 1e-6)).all())


@pytest.mark.parametrize("name", ["int8", "int4", "int2"])
def test_stochastic_rounding_is_unbiased(name):
    base = vec(64, seed=9)
    reps = 4000
    x = base.repeat(reps)  # every chunk of 64 is `base`: the same scale, independent rounding draws
    c = get_compressor(f"{name}(chunk=64, rounding='stochastic', scale_dtype='float32')")
    wire = c.compress(x, generator=torch.Generator().manual_seed(11))
    y = c.decompress(wire, x.numel()).view(reps, 64)
    step = float(wire["scales"][0])
    # per-entry mean over the draws: the standard error is at most step / (2 sqrt(reps))
    assert float((y.mean(0) - base).abs().max()) < 5 * step / (2 * math.sqrt(reps))
    nearest = get_compressor(f"{name}(chunk=64, scale_dtype='float32')")
    biased = nearest.decompress(nearest.compress(x), x.numel()).view(reps, 64).mean(0)
    assert float((biased - base).abs().max()) > 10 * float((y.mean(0) - base).abs().max()) or name == "int8"
    # different seeds: different draws, the same expectation
    means = torch.stack(
        [
            c.decompress(c.compress(base.repeat(200), generator=torch.Generator().manual_seed(s)), 64 * 200)
            .view(200, 64)
            .mean(0)
            for s in range(5)
        ]
    )
    assert not torch.equal(means[0], means[1])
    assert float((means.mean(0) - base).abs().max()) < 5 * step / (2 * math.sqrt(1000))


@pytest.mark.parametrize("spec", SPECS)
def test_deterministic_across_calls_and_thread_counts(spec):
    x = vec(30_000, seed=6)
    digests = set()
    outs = set()
    prev = torch.get_num_threads()
    try:
        for threads in (1, 2, 1):
            torch.set_num_threads(threads)
            wire, y = roundtrip(spec, x, seed=5, gen_seed=2)
            digests.add(tensor_digest(wire))
            outs.add(tensor_digest({"y": y}))
    finally:
        torch.set_num_threads(prev)
    assert len(digests) == 1 and len(outs) == 1


def test_sizes_on_a_million_parameters():
    d = 1_000_000
    x = vec(d, seed=1)
    ratios = {}
    for spec in ["topk(ratio=0.01)+int2", "chunked_topk(ratio=0.01, chunk=4096)+int2", "int8", "none"]:
        c = get_compressor(spec)
        wire = c.compress(x)
        ratios[spec] = compression_ratio(wire, d)
        assert compressed_bytes(wire) <= c.max_bytes(d)
    assert ratios["topk(ratio=0.01)+int2"] >= 150
    assert ratios["chunked_topk(ratio=0.01, chunk=4096)+int2"] >= 150
    assert 3.9 < ratios["int8"] < 4.0
    assert 0.99 < ratios["none"] <= 1.0


def test_compress_refuses_bad_input():
    c = get_compressor("topk(ratio=0.1)+int8")
    with pytest.raises(BadCompressed):
        c.compress(torch.tensor([1.0, float("nan")]))
    with pytest.raises(BadCompressed):
        c.compress(torch.ones(2, 2))
    with pytest.raises(BadCompressed):
        c.compress(torch.ones(3, dtype=torch.int64))
    with pytest.raises(BadCompressed, match="float16"):
        c.compress(torch.tensor([1e7, 1.0]))
    assert torch.equal(
        get_compressor("int8(scale_dtype='float32')").decompress(
            get_compressor("int8(scale_dtype='float32')").compress(torch.tensor([127e7, 0.0])), 2
        ),
        torch.tensor([127e7, 0.0]),
    )
    with pytest.raises(BadCompressionSpec, match="generator"):
        get_compressor("int2(rounding='stochastic')").compress(torch.ones(4))


def test_module_level_helpers_use_the_spec():
    x = vec(100)
    wire = get_compressor("int8").compress(x)
    assert torch.equal(
        decompress(wire, 100, "int8"),
        Compressor(None, get_compressor("int8").quantizer).decompress(wire, 100),
    )
    with pytest.raises(BadCompressed):
        decompress(wire, 100, "int4")
