"""Malformed compressed updates (foreign input) are refused with BadCompressed, never anything else."""

import contextlib

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deai.learn.compression import BadCompressed, check_compressed, get_compressor
from deai.learn.compression.quantize import MAX_SCALE

D = 3000
SPECS = [
    "none",
    "topk(ratio=0.01)",
    "topk(ratio=0.02)+int2",
    "randomk(ratio=0.01)+int4",
    "chunked_topk(ratio=0.02, chunk=512)+int8",
    "int2(chunk=64)",
    "int8(scale_dtype='float32')",
]


def valid(spec: str, d: int = D) -> dict[str, torch.Tensor]:
    x = torch.randn(d, generator=torch.Generator().manual_seed(0))
    return get_compressor(spec).compress(x, seed=4)


def refused(spec: str, wire: object, d: int = D, match: str | None = None, **kw) -> None:
    with pytest.raises(BadCompressed, match=match):
        check_compressed(wire, d, spec, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("spec", SPECS)
def test_valid_updates_pass(spec):
    assert check_compressed(valid(spec), D, spec).d == D


def with_(wire: dict, **changes: torch.Tensor) -> dict:
    out = dict(wire)
    out.update(changes)
    return out


def header(wire: dict, field: int, value: int) -> dict:
    h = wire["header"].clone()
    h[field] = value
    return with_(wire, header=h)


@pytest.mark.parametrize("spec", SPECS)
def test_structure(spec):
    wire = valid(spec)
    refused(spec, [1, 2], match="mapping")
    refused(spec, {k: v for k, v in wire.items() if k != "header"}, match="header")
    refused(spec, with_(wire, extra=torch.zeros(1)), match="unexpected")
    refused(spec, with_(wire, header=wire["header"].to(torch.int32)))
    refused(spec, with_(wire, header=torch.zeros(9, dtype=torch.int64)))
    refused(spec, {f"k{i}": torch.zeros(1) for i in range(9)}, match="over")
    for key, t in wire.items():
        if key == "header":
            continue
        refused(spec, with_(wire, **{key: t[:-1]}))  # shape
        refused(spec, with_(wire, **{key: t.to(torch.float64)}))  # dtype
        refused(spec, with_(wire, **{key: t.tolist()}))  # not a tensor
        refused(spec, {k: v for k, v in wire.items() if k != key}, match="missing")
    refused(spec, wire, d=D + 1, match="header d")
    for field in (0, 3, 4, 5, 6):  # version, sparsifier, its chunk, bits, quantizer chunk
        refused(spec, header(wire, field, int(wire["header"][field]) + 1), match="header")


def test_odd_tensors():
    spec = "topk(ratio=0.02)+int2"
    wire = valid(spec)
    refused(spec, with_(wire, codes=torch.empty(wire["codes"].shape, dtype=torch.uint8, device="meta")))
    refused(spec, with_(wire, header=torch.empty(8, dtype=torch.int64, device="meta")))
    refused(spec, with_(wire, scales=wire["scales"].to_sparse()))
    strided = torch.zeros(2 * wire["codes"].numel(), dtype=torch.uint8)
    strided[::2] = wire["codes"]  # a non-contiguous view holding the same codes is read correctly
    odd = with_(wire, codes=strided[::2])
    assert torch.equal(get_compressor(spec).decompress(odd, D), get_compressor(spec).decompress(wire, D))


def test_k_bounded_by_the_spec():
    spec = "topk(ratio=0.01)"
    c = get_compressor(spec)
    x = torch.randn(D)
    k = c.max_k(D)
    bigger = get_compressor("topk(ratio=0.02)").compress(x)
    refused(spec, bigger, match="header k")
    refused(spec, header(valid(spec), 2, -1), match="header k")
    # fewer than k is allowed for top-k (consistent tensors)
    fewer = get_compressor("topk(ratio=0.005)").compress(x)
    assert check_compressed(fewer, D, spec).k < k
    refused("randomk(ratio=0.01)", header(valid("randomk(ratio=0.01)"), 2, k - 1), match="header k")
    refused(
        "chunked_topk(ratio=0.02, chunk=512)+int8",
        header(valid("chunked_topk(ratio=0.02, chunk=512)+int8"), 2, 1),
    )


def test_seed():
    refused("topk(ratio=0.01)", header(valid("topk(ratio=0.01)"), 7, 1), match="header seed")
    refused("randomk(ratio=0.01)", header(valid("randomk(ratio=0.01)"), 7, -5), match="seed")
    refused("randomk(ratio=0.01)", valid("randomk(ratio=0.01)"), seed=5, match="seed")
    assert check_compressed(valid("randomk(ratio=0.01)"), D, "randomk(ratio=0.01)", seed=4).seed == 4


def test_indices():
    spec = "topk(ratio=0.01)"
    wire = valid(spec)
    off = wire["offsets"].clone()
    off[1] = off[0]  # a duplicate index would count a value twice
    refused(spec, with_(wire, offsets=off), match="strictly increasing")
    off = wire["offsets"].flip(0).contiguous()
    refused(spec, with_(wire, offsets=off), match="strictly increasing")
    off = wire["offsets"].clone()
    off[-1] = D + 5  # in the last block, past d
    refused(spec, with_(wire, offsets=off), match="outside")
    refused(spec, with_(wire, counts=wire["counts"] + 1), match="counts")
    counts = wire["counts"].clone()
    counts[0] = -1
    refused(spec, with_(wire, counts=counts), match="counts")
    big = valid(spec, d=200_000)
    counts = big["counts"].clone()
    counts[0] += counts[1]
    counts[1] = 0  # same total, block 1's offsets moved to block 0: order breaks
    refused(spec, with_(big, counts=counts), d=200_000)
    spec = "chunked_topk(ratio=0.02, chunk=512)+int8"
    wire = valid(spec)
    off = wire["offsets"].clone()
    off[0] = 600  # past its chunk of 512
    refused(spec, with_(wire, offsets=off), match="chunk")
    off = wire["offsets"].clone()
    off[0] = -1  # reads as 65535
    refused(spec, with_(wire, offsets=off), match="chunk")
    off = wire["offsets"].clone()
    off[1] = off[0]
    refused(spec, with_(wire, offsets=off), match="strictly increasing")


def test_codes_and_scales():
    for spec, bad in (("int8(scale_dtype='float32')", 255), ("randomk(ratio=0.01)+int4", 0xF0)):
        wire = valid(spec)
        codes = wire["codes"].clone()
        codes[0] = bad
        refused(spec, with_(wire, codes=codes), match="code")
    spec = "topk(ratio=0.01)+int2(chunk=7)"
    wire = valid(spec)  # k = 30: 8 bytes, the last holds 2 codes and 2 padding codes
    codes = wire["codes"].clone()
    codes[-1] |= 0b1100_0000
    refused(spec, with_(wire, codes=codes), match="padding")
    for bad in (float("nan"), float("inf"), -1.0, MAX_SCALE * 4):
        spec = "int8(scale_dtype='float32')"
        wire = valid(spec)
        scales = wire["scales"].clone()
        scales[0] = bad
        refused(spec, with_(wire, scales=scales), match="scale")
    wire = valid("int2(chunk=64)")
    scales = wire["scales"].clone()
    scales[0] = float("inf")
    refused("int2(chunk=64)", with_(wire, scales=scales), match="scale")


def test_values_finite():
    for spec in ("none", "topk(ratio=0.01)"):
        wire = valid(spec)
        values = wire["values"].clone()
        values[0] = float("nan")
        refused(spec, with_(wire, values=values), match="NaN")


DTYPES = [torch.float32, torch.float16, torch.float64, torch.int64, torch.int32, torch.int16, torch.uint8]


@st.composite
def tensors(draw, max_len: int = 64) -> torch.Tensor:
    dtype = draw(st.sampled_from(DTYPES))
    n = draw(st.integers(0, max_len))
    raw = draw(st.binary(min_size=n * 8, max_size=n * 8))
    t = torch.frombuffer(bytearray(raw), dtype=torch.uint8) if raw else torch.zeros(0, dtype=torch.uint8)
    width = torch.empty(0, dtype=dtype).element_size()
    return t[: n * width].view(dtype).clone()


@st.composite
def mutated(draw) -> tuple[str, dict]:
    """A valid update of a random scheme with one to three random mutations."""
    spec = draw(st.sampled_from(SPECS))
    wire = dict(valid(spec, d=700))
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from([*sorted(wire), "header", "junk"]))
        op = draw(st.sampled_from(["drop", "random", "flip", "header_field", "reshape", "cast"]))
        if op == "drop":
            wire.pop(key, None)
        elif op == "random":
            wire[key] = draw(tensors())
        elif op == "flip" and key in wire and wire[key].numel():
            t = wire[key].clone()
            b = t.reshape(-1).view(torch.uint8)  # the bytes of t (a view: writes go to t)
            b[draw(st.integers(0, b.numel() - 1))] = draw(st.integers(0, 255))
            wire[key] = t
        elif (
            op == "header_field"
            and "header" in wire
            and wire["header"].shape == (8,)
            and wire["header"].dtype == torch.int64
        ):
            h = wire["header"].clone()
            h[draw(st.integers(0, 7))] = draw(st.integers(-(2**63), 2**63 - 1))
            wire["header"] = h
        elif op == "reshape" and key in wire and wire[key].numel():
            wire[key] = wire[key].reshape(1, -1)
        elif op == "cast" and key in wire:
            wire[key] = wire[key].to(draw(st.sampled_from(DTYPES)))
    return spec, wire


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutations_never_crash(case):
    spec, wire = case
    try:
        update = get_compressor(spec).decode(wire, 700)
    except BadCompressed:
        return
    # whatever passes is a well-formed update: finite values at distinct in-range positions
    dense = update.dense()
    assert dense.shape == (700,) and bool(torch.isfinite(dense).all())
    if update.indices is not None:
        assert update.indices.unique().numel() == update.indices.numel() == update.values.numel()


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(SPECS),
    st.dictionaries(
        st.sampled_from(["header", "values", "codes", "scales", "offsets", "counts", "x"]), tensors()
    ),
    st.integers(1, 5000),
)
def test_random_dicts_never_crash(spec, wire, d):
    with contextlib.suppress(BadCompressed):
        check_compressed(wire, d, spec)
