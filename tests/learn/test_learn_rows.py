"""Row sources: every aggregator streamed over update files equals its in-memory result.

Same chunk size -> same bits (the file and the in-memory source yield identical blocks and every
reduction does the same float operations on them). Against the default in-memory call (one big
chunk) the continuous rules agree within float rounding only: Gram matrices, norms and dot
products are then summed over other block boundaries.
"""

import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deai.core.tensorio import TensorFile, flatten, from_safetensors, to_safetensors
from deai.learn.aggregators import (
    AGGREGATORS,
    PRE_AGGREGATORS,
    FileRows,
    TensorRows,
    get_aggregator,
)
from deai.learn.errors import BadUpdates

# Every registered aggregator and pre-aggregator, each with an f its assumption accepts at n >= 7.
SPECS = [
    ("default", 0),
    ("mean", 0),
    ("median", 1),
    ("trimmed_mean", 1),
    ("geometric_median", 1),
    ("krum", 1),
    ("multi_krum", 1),
    ("bulyan", 1),
    ("centered_clipping", 1),
    ("centered_clipping(tau=0.5, iters=3)", 1),
    ("fltrust", 1),
    ("foolsgold", 1),
    ("nnm+multi_krum", 1),
    ("bucketing(s=2)+median", 1),
    ("root_gate+centered_clipping", 1),
]


# Rules whose output moves continuously with their inputs: other block boundaries change their
# result by float rounding only. The others choose (Krum's and NNM's neighbours, the gate's sign
# test, FoolsGold's clamped logit weights), and a choice may flip on a last-bit difference.
CONTINUOUS = (
    "mean",
    "median",
    "trimmed_mean",
    "geometric_median",
    "centered_clipping",
    "fltrust",
    "bucketing",
)


def test_specs_cover_every_registered_aggregator():
    names = {n for spec, _ in SPECS for n in spec.replace("(", "+").split("+")}
    assert (
        set(AGGREGATORS.names()) - {"fedavg", "coordinate_median", "geomed", "rfa", "multikrum", "cc"}
        <= names
    )
    assert set(PRE_AGGREGATORS.names()) <= names


def _write(folder: Path, rows: list[dict[str, torch.Tensor]]) -> list[Path]:
    paths = []
    for i, state in enumerate(rows):
        p = folder / f"u{i}.safetensors"
        p.write_bytes(to_safetensors(state))
        paths.append(p)
    return paths


def _call(spec, f, source, root):
    """A fresh aggregator (stateful ones start alike) on ``source``, with what its spec needs."""
    context = {}
    if spec.startswith(("fltrust", "root_gate", "default")):
        context["root_update"] = root
    if "bucketing" in spec:
        context["bucket_seed"] = 7
    return get_aggregator(spec, f=f)(source, **context)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(7, 11),
    d=st.integers(1, 90),
    chunk=st.integers(1, 40),
    seed=st.integers(0, 1000),
)
def test_file_rows_equal_in_memory_bit_for_bit(n, d, chunk, seed):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=gen) * torch.rand(n, 1, generator=gen) * 3
    x[0] = 50.0 * x[0]  # an outlier row
    root = x[1:].mean(0) + 0.1 * torch.randn(d, generator=gen)
    with tempfile.TemporaryDirectory() as tmp:
        files = [TensorFile.open(p) for p in _write(Path(tmp), [{"delta": r.clone()} for r in x])]
        try:
            for spec, f in SPECS:
                from_files = _call(spec, f, FileRows(files, chunk=chunk), root)
                in_memory = _call(spec, f, TensorRows(x, chunk=chunk), root)
                assert torch.equal(from_files, in_memory), spec
                if spec.startswith(CONTINUOUS):
                    default = _call(spec, f, x, root)  # the plain tensor call: one chunk of CHUNK
                    assert torch.allclose(default, in_memory, rtol=1e-5, atol=1e-5), spec
        finally:
            for fh in files:
                fh.close()


def test_file_rows_flatten_every_dtype_in_name_order(tmp_path):
    gen = torch.Generator().manual_seed(0)
    states = [
        {
            "w": torch.randn(3, 4, generator=gen),
            "a_half": torch.randn(5, generator=gen).half(),
            "steps": torch.tensor([i], dtype=torch.int64),
            "bf": torch.randn(2, generator=gen).bfloat16(),
            "b_empty": torch.zeros(0),
            "z_empty": torch.zeros(2, 0),
        }
        for i in range(5)
    ]
    files = [TensorFile.open(p) for p in _write(tmp_path, states)]
    expected = torch.stack([flatten({k: s[k] for k in sorted(s)})[0] for s in states])
    for chunk in (1, 3, 4, 100):
        assert torch.equal(FileRows(files, chunk=chunk).materialize(), expected), chunk
    # the flat layout comes from the header, in name order, whatever order safetensors loads in
    assert [name for name, _, _ in files[0].spec.entries] == sorted(states[0])
    loaded = from_safetensors(to_safetensors(states[0]))
    assert torch.equal(flatten({k: loaded[k] for k in sorted(loaded)})[0], expected[0])
    for fh in files:
        fh.close()


def test_file_rows_refuse_other_layouts_and_non_finite_blocks(tmp_path):
    x = torch.randn(6, 50)
    x[4, 37] = float("nan")  # in the fourth block of 10
    paths = _write(tmp_path, [{"delta": r.clone()} for r in x])
    files = [TensorFile.open(p, what=f"update {i}") for i, p in enumerate(paths)]
    rows = FileRows(files, chunk=10)
    with pytest.raises(BadUpdates, match=r"update 4: tensor 'delta' holds non-finite values"):
        get_aggregator("median", f=1)(rows)
    with pytest.raises(BadUpdates, match="update 4"):
        get_aggregator("mean")(rows)
    other = tmp_path / "other.safetensors"
    other.write_bytes(to_safetensors({"delta": torch.zeros(49)}))
    with (
        TensorFile.open(other, what="update 6") as odd,
        pytest.raises(BadUpdates, match="update 6 has another"),
    ):
        FileRows([*files, odd])
    for fh in files:
        fh.close()


def test_a_pass_reads_each_block_once(tmp_path):
    # A pass reads each block of each file once: the Gram matrix of a krum call needs one pass,
    # the mean of the chosen rows another.
    x = torch.randn(7, 30)
    files = [TensorFile.open(p) for p in _write(tmp_path, [{"delta": r.clone()} for r in x])]
    reads: list[tuple[int, int]] = []
    rows = FileRows(files, chunk=8)
    original = rows.block

    def counting(lo, hi):
        reads.append((lo, hi))
        return original(lo, hi)

    rows.block = counting  # type: ignore[method-assign]
    get_aggregator("multi_krum", f=1)(rows)
    assert reads == [(0, 8), (8, 16), (16, 24), (24, 30)] * 2
    for fh in files:
        fh.close()


def test_tensor_file_refuses_malformed_headers(tmp_path):
    from deai.core.errors import TensorError

    good = to_safetensors({"delta": torch.zeros(4)})
    cases = {
        "short": b"abc",
        "huge_header": (10**9).to_bytes(8, "little") + b"{}",
        "bad_json": (4).to_bytes(8, "little") + b"{{{{",
        "offsets_outside": good.replace(b"[0,16]", b"[0,99]"),
    }
    for name, data in cases.items():
        p = tmp_path / name
        p.write_bytes(data)
        with pytest.raises(TensorError):
            TensorFile.open(p)
    p = tmp_path / "good"
    p.write_bytes(good)
    with pytest.raises(TensorError, match="over the limit"):
        TensorFile.open(p, max_bytes=len(good) - 1)
    with TensorFile.open(p) as f, pytest.raises(TensorError, match="outside"):
        f.read(0, 5)


def test_sorting_rules_never_reorder_the_callers_rows():
    # One column: its transpose is contiguous already, and sorting a view would sort the input.
    for spec, f in [("median", 1), ("trimmed_mean", 1), ("bulyan", 1)]:
        x = torch.tensor([[3.0], [1.0], [2.0], [9.0], [-4.0], [0.5], [7.0]])
        before = x.clone()
        get_aggregator(spec, f=f)(x)
        assert torch.equal(x, before), spec
