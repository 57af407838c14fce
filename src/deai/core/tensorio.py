"""Tensor I/O: state dicts as safetensors bytes, flat vectors, exact digests.

- :func:`to_safetensors` / :func:`from_safetensors`: a state dict to and from safetensors bytes.
  Loading never unpickles; before the safetensors loader sees the bytes it checks the header's
  length, parses it with :func:`~deai.core.encoding.parse_json` (bounded depth) and checks every
  entry: at most :data:`MAX_TENSORS` tensors, names of at most :data:`MAX_NAME` characters, at
  most :data:`MAX_DIMS` dimensions, offsets inside the data that match shape and dtype. Then,
  optionally, the expected names, shapes and dtypes, and that every float is finite.
- :func:`flatten` / :func:`unflatten`: a state dict to one float32 vector plus a
  :class:`FlatSpec` that restores it. Aggregators work on these vectors stacked ``[n, d]``.
- :class:`TensorFile`: a safetensors file read range by range as one flat float32 vector (header
  checked as above, values read with positioned reads, NaN/inf refused per range), so a large
  update never has to be in memory whole.
- :func:`tensor_digest`: SHA-256 over names, dtypes, shapes and raw little-endian bytes, in sorted
  name order. Independent of the safetensors file layout, so two parties agree on a digest
  whenever their tensors are bit-identical.
"""

from __future__ import annotations

import bisect
import hashlib
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from os import PathLike
from typing import BinaryIO

import torch
from safetensors import SafetensorError
from safetensors.torch import load as _st_load
from safetensors.torch import save as _st_save

from deai.core.encoding import canonical, parse_json
from deai.core.errors import EncodingError, TensorError

__all__ = [
    "FlatSpec",
    "TensorFile",
    "check_finite",
    "flatten",
    "from_safetensors",
    "tensor_digest",
    "to_safetensors",
    "unflatten",
]

_DTYPES = {
    "float32": torch.float32,
    "float64": torch.float64,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "int64": torch.int64,
    "int32": torch.int32,
    "int16": torch.int16,
    "int8": torch.int8,
    "uint8": torch.uint8,
    "bool": torch.bool,
}
_NAMES = {v: k for k, v in _DTYPES.items()}
MAX_HEADER = 16 * 1024 * 1024
MAX_TENSORS = 65_536  # a large transformer has a few thousand
MAX_NAME = 1024
MAX_DIMS = 8
_ST_DTYPES = {
    "F32": 4,
    "F64": 8,
    "F16": 2,
    "BF16": 2,
    "I64": 8,
    "I32": 4,
    "I16": 2,
    "I8": 1,
    "U8": 1,
    "BOOL": 1,
}


def _dtype_name(dtype: torch.dtype) -> str:
    try:
        return _NAMES[dtype]
    except KeyError:
        raise TensorError(f"unsupported dtype {dtype}") from None


def check_finite(tensors: Mapping[str, torch.Tensor]) -> None:
    """Raise TensorError naming the first tensor that holds NaN or infinity."""
    for name, t in tensors.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise TensorError(f"tensor {name!r} holds non-finite values")


def to_safetensors(state: Mapping[str, torch.Tensor], metadata: Mapping[str, str] | None = None) -> bytes:
    """Serialize a state dict. Shared or non-contiguous tensors are copied first."""
    clean = {}
    for name, t in state.items():
        if not isinstance(t, torch.Tensor):
            raise TensorError(f"{name!r} is not a tensor")
        clean[name] = t.detach().cpu().contiguous().clone()
    return _st_save(clean, metadata=dict(metadata) if metadata else None)


def from_safetensors(
    data: bytes,
    *,
    expected: Mapping[str, tuple[tuple[int, ...], torch.dtype]] | None = None,
    require_finite: bool = True,
    max_bytes: int | None = None,
) -> dict[str, torch.Tensor]:
    """Parse safetensors bytes from an untrusted party.

    ``expected`` maps each name to ``(shape, dtype)``; any missing, extra or mismatched tensor is
    refused. Non-finite floats are refused unless ``require_finite=False``.
    """
    if not isinstance(data, bytes | bytearray):
        raise TensorError("tensor data must be bytes")
    if max_bytes is not None and len(data) > max_bytes:
        raise TensorError(f"tensor data is {len(data)} bytes, over the limit of {max_bytes}")
    if len(data) < 8:
        raise TensorError("tensor data is too short to be safetensors")
    (header_len,) = struct.unpack("<Q", data[:8])
    if header_len > min(MAX_HEADER, len(data) - 8):
        raise TensorError(f"safetensors header length {header_len} is impossible for {len(data)} bytes")
    _check_header(bytes(data[8 : 8 + header_len]), len(data) - 8 - header_len)
    try:
        tensors = _st_load(bytes(data))
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise TensorError(f"invalid safetensors data: {exc}") from exc
    if expected is not None:
        missing = sorted(set(expected) - set(tensors))
        extra = sorted(set(tensors) - set(expected))
        if missing or extra:
            raise TensorError(f"tensor names differ: missing {missing}, unexpected {extra}")
        for name, (shape, dtype) in expected.items():
            t = tensors[name]
            if tuple(t.shape) != tuple(shape):
                raise TensorError(f"tensor {name!r} has shape {tuple(t.shape)}, expected {tuple(shape)}")
            if t.dtype != dtype:
                raise TensorError(f"tensor {name!r} has dtype {t.dtype}, expected {dtype}")
    if require_finite:
        check_finite(tensors)
    return tensors


def _int(value: object, lo: int, hi: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi


def _check_header(raw: bytes, body: int) -> None:
    """Refuse a safetensors header (``body``: the bytes after it) unless every entry is sane:
    bounded count, names and ranks, and offsets inside the body that fit shape times dtype size."""
    try:
        header = parse_json(raw, max_bytes=MAX_HEADER, max_depth=3, what="safetensors header")
    except EncodingError as exc:
        raise TensorError(str(exc)) from None
    if not isinstance(header, dict):
        raise TensorError("safetensors header must be a JSON object")
    if len(header) > MAX_TENSORS + 1:
        raise TensorError(f"safetensors header lists {len(header)} tensors, over {MAX_TENSORS}")
    for name, info in header.items():
        if len(name) > MAX_NAME:
            raise TensorError(f"a tensor name is {len(name)} characters, over {MAX_NAME}")
        if name == "__metadata__":
            if not isinstance(info, dict) or not all(isinstance(v, str) for v in info.values()):
                raise TensorError("safetensors __metadata__ must map strings to strings")
            continue
        if not isinstance(info, dict) or info.get("dtype") not in _ST_DTYPES:
            raise TensorError(f"tensor {name[:80]!r} has an unsupported dtype")
        shape, offsets = info.get("shape"), info.get("data_offsets")
        if (
            set(info) != {"dtype", "shape", "data_offsets"}
            or not isinstance(shape, list)
            or len(shape) > MAX_DIMS
        ):
            raise TensorError(
                f"tensor {name[:80]!r}: an entry is dtype, shape (<= {MAX_DIMS} dims), data_offsets"
            )
        if not all(_int(d, 0, 2**31 - 1) for d in shape):
            raise TensorError(f"tensor {name[:80]!r} has an impossible shape")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(_int(o, 0, body) for o in offsets)):
            raise TensorError(f"tensor {name[:80]!r} has data offsets outside the data")
        numel = 1
        for d in shape:
            numel *= d
        if offsets[1] - offsets[0] != numel * _ST_DTYPES[info["dtype"]]:
            raise TensorError(f"tensor {name[:80]!r}: its offsets do not hold its shape and dtype")


@dataclass(frozen=True)
class FlatSpec:
    """Names, shapes and dtypes of a flattened state dict, in flattening order."""

    entries: tuple[tuple[str, tuple[int, ...], str], ...]

    @property
    def size(self) -> int:
        total = 0
        for _, shape, _ in self.entries:
            n = 1
            for s in shape:
                n *= s
            total += n
        return total

    def expected(self) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
        return {name: (shape, _DTYPES[dt]) for name, shape, dt in self.entries}

    def to_json(self) -> bytes:
        return canonical([[n, list(s), d] for n, s, d in self.entries])

    @classmethod
    def from_json(cls, data: bytes | str) -> FlatSpec:
        try:
            raw = parse_json(data, max_bytes=MAX_HEADER, max_depth=3, what="flat spec")
            entries = tuple((str(n), tuple(int(x) for x in s), str(d)) for n, s, d in raw)
        except (ValueError, TypeError) as exc:
            raise TensorError(f"invalid flat spec: {exc}") from exc
        for name, shape, dt in entries:
            if dt not in _DTYPES or any(x < 0 for x in shape):
                raise TensorError(f"invalid flat spec entry {name!r}")
        return cls(entries)

    @classmethod
    def of(cls, state: Mapping[str, torch.Tensor]) -> FlatSpec:
        return cls(tuple((k, tuple(v.shape), _dtype_name(v.dtype)) for k, v in state.items()))


def flatten(state: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, FlatSpec]:
    """Concatenate every tensor (cast to float32) into one 1-D vector."""
    spec = FlatSpec.of(state)
    if not state:
        return torch.zeros(0), spec
    vec = torch.cat([t.detach().reshape(-1).to(torch.float32) for t in state.values()])
    return vec, spec


def unflatten(vec: torch.Tensor, spec: FlatSpec) -> dict[str, torch.Tensor]:
    """Inverse of :func:`flatten`. Integer tensors are rounded back to their dtype."""
    if vec.dim() != 1 or vec.numel() != spec.size:
        raise TensorError(f"flat vector has shape {tuple(vec.shape)}, the spec needs ({spec.size},)")
    out, offset = {}, 0
    for name, shape, dt in spec.entries:
        n = 1
        for s in shape:
            n *= s
        piece = vec[offset : offset + n].reshape(shape)
        dtype = _DTYPES[dt]
        out[name] = piece.to(dtype) if dtype.is_floating_point else piece.round().to(dtype)
        offset += n
    return out


def tensor_digest(state: Mapping[str, torch.Tensor]) -> str:
    """Exact SHA-256 (hex) of a tensor set: two sets share a digest iff they are bit-identical."""
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        head = canonical([name, _dtype_name(t.dtype), list(t.shape)])
        h.update(struct.pack("<Q", len(head)) + head)
        # bfloat16 has no NumPy dtype: view the bits as int16 (same width, same bytes).
        arr = (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).reshape(-1).numpy()
        b = arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
        h.update(struct.pack("<Q", len(b)) + b)
    return h.hexdigest()


class TensorFile:
    """A safetensors file read range by range as one flat float32 vector, never whole.

    The flat vector concatenates the file's tensors in name order (:attr:`spec`), each cast to
    float32 as :func:`flatten` does. Opening reads and checks only the header (the same bounds as
    :func:`from_safetensors`: length, entry count, names, ranks, offsets inside the data that hold
    shape times dtype); :meth:`read` then reads just the bytes of ``[lo, hi)`` with positioned reads
    on the file handle it keeps (no memory map: pages read stay out of the process's resident set)
    and refuses NaN or infinity in what it read. The caller owns the handle's lifetime
    (:meth:`close`, or a ``with`` block). Integrity (the content hash) is the caller's check, e.g.
    :meth:`deai.core.blobs.BlobStore.verify` before reading. Needs a little-endian host.
    """

    def __init__(self, fh: BinaryIO, *, max_bytes: int | None = None, what: str = "tensor file") -> None:
        import os
        import sys

        if sys.byteorder != "little":
            raise TensorError("reading safetensors in ranges needs a little-endian host")
        self.what = what
        self._fh = fh
        self._fd = fh.fileno()
        size = os.fstat(self._fd).st_size
        if max_bytes is not None and size > max_bytes:
            raise TensorError(f"{what} is {size} bytes, over the limit of {max_bytes}")
        if size < 8:
            raise TensorError(f"{what} is too short to be safetensors")
        (header_len,) = struct.unpack("<Q", self._pread(0, 8))
        if header_len > min(MAX_HEADER, size - 8):
            raise TensorError(f"safetensors header length {header_len} is impossible for {size} bytes")
        raw = self._pread(8, header_len)
        _check_header(raw, size - 8 - header_len)
        header = parse_json(raw, max_bytes=MAX_HEADER, max_depth=3, what="safetensors header")
        base = 8 + header_len
        entries: list[tuple[str, tuple[int, ...], str]] = []
        # per tensor in flat order: (name, first flat index, numel, torch dtype, absolute byte offset)
        self._parts: list[tuple[str, int, int, torch.dtype, int]] = []
        start = 0
        for name in sorted(k for k in header if k != "__metadata__"):
            info = header[name]
            dtype = _ST_TORCH[info["dtype"]]
            shape = tuple(info["shape"])
            numel = 1
            for s in shape:
                numel *= s
            entries.append((name, shape, _NAMES[dtype]))
            self._parts.append((name, start, numel, dtype, base + info["data_offsets"][0]))
            start += numel
        self.spec = FlatSpec(tuple(entries))
        self.size = start
        self._starts = [part[1] for part in self._parts]

    @classmethod
    def open(
        cls, path: str | PathLike, *, max_bytes: int | None = None, what: str | None = None
    ) -> TensorFile:
        """Open ``path`` and check its header (:class:`TensorError` if it is not sane safetensors)."""
        fh = open(path, "rb", buffering=0)  # noqa: SIM115 - kept open until close()
        try:
            return cls(fh, max_bytes=max_bytes, what=what or str(path))
        except BaseException:
            fh.close()
            raise

    def _pread(self, offset: int, n: int) -> bytes:
        import os

        data = os.pread(self._fd, n, offset)
        while len(data) < n:
            more = os.pread(self._fd, n - len(data), offset + len(data))
            if not more:
                raise TensorError(f"{self.what} ended early (truncated while open?)")
            data += more
        return data

    def _readinto(self, offset: int, view: memoryview) -> None:
        import os

        done = 0
        while done < len(view):
            got = os.preadv(self._fd, [view[done:]], offset + done)
            if got <= 0:
                raise TensorError(f"{self.what} ended early (truncated while open?)")
            done += got

    def meta(self) -> dict[str, torch.Tensor]:
        """The file's tensors as data-less ``meta`` tensors (names, shapes, dtypes) in flat order."""
        return {
            name: torch.empty(shape, dtype=_DTYPES[dt], device="meta")
            for name, shape, dt in self.spec.entries
        }

    def read(self, lo: int, hi: int, out: torch.Tensor | None = None) -> torch.Tensor:
        """Flat values ``[lo, hi)`` as float32 (into ``out``, a contiguous float32 ``[hi - lo]``, if
        given). :class:`TensorError` naming the tensor if a float in the range is NaN or infinite."""
        if not 0 <= lo <= hi <= self.size:
            raise TensorError(f"range [{lo}, {hi}) outside the {self.size} values of {self.what}")
        if out is None:
            out = torch.empty(hi - lo, dtype=torch.float32)
        if out.dtype != torch.float32 or out.shape != (hi - lo,) or not out.is_contiguous():
            raise TensorError("read needs a contiguous float32 output of the range's length")
        # the first tensor that may overlap [lo, hi) by bisection: a header may list many tensors
        first = max(0, bisect.bisect_right(self._starts, lo) - 1)
        for name, start, numel, dtype, offset in self._parts[first:]:
            if start >= hi:
                break
            a, b = max(lo, start), min(hi, start + numel)
            if a >= b:
                continue
            dst = out[a - lo : b - lo]
            width = torch.empty(0, dtype=dtype).element_size()
            if dtype == torch.float32:
                self._readinto(offset + (a - start) * width, dst.numpy().data.cast("B"))
            else:
                buf = bytearray((b - a) * width)
                self._readinto(offset + (a - start) * width, memoryview(buf))
                dst.copy_(torch.frombuffer(buf, dtype=dtype))
            # a finite sum proves every value finite; only a non-finite one needs the full check
            finite = bool(torch.isfinite(dst.sum())) or bool(torch.isfinite(dst).all())
            if dtype.is_floating_point and not finite:
                raise TensorError(f"tensor {name!r} holds non-finite values")
        return out

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> TensorFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_ST_TORCH = {
    "F32": torch.float32,
    "F64": torch.float64,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
