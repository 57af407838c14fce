"""A compressor: a chain of an optional sparsifier and an optional quantizer, and its wire format.

:meth:`Compressor.compress` turns a float ``[d]`` update into a flat ``dict`` of tensors (save it
with :func:`deai.core.tensorio.to_safetensors`); :meth:`Compressor.decode` /
:meth:`Compressor.decompress` check such a dict (a foreign input) and rebuild the update. The
checks, in order, each before anything relies on what it checks:

1. a mapping of at most 8 string keys to tensors, holding :data:`~.base.HEADER`, int64 ``[8]``;
2. the header matches the spec and ``d``: version, ``d``, sparsifier id and chunk, quantizer bits
   and chunk; the seed is 0 unless the sparsifier is ``randomk`` (then non-negative, and equal to
   the ``seed`` the receiver expects if it names one); ``k`` is ``d`` without a sparsifier, else at
   most the spec's budget ``ceil(ratio * d)`` (exactly it for ``randomk`` and ``chunked_topk``);
3. exactly the expected keys, each with the expected shape (from ``d`` and ``k``) and dtype;
4. contents: indices in ``[0, d)`` and strictly increasing, block counts that add up to ``k``,
   offsets inside their chunk, codes in range with zero padding, scales finite, non-negative and
   at most :data:`~.quantize.MAX_SCALE`, float values finite.

Any failure raises :class:`~.errors.BadCompressed`. Decoding is pure: integer unpacking, one
float32 subtraction and product per value, a scatter to unique indices; no reduction whose order
could vary, so every executor rebuilds the same bits.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from deai.learn.compression.base import (
    FORMAT_VERSION,
    HEADER,
    MAX_D,
    VALUES,
    Header,
    Quantizer,
    SparseUpdate,
    Sparsifier,
    WireSpec,
)
from deai.learn.compression.errors import BadCompressed, BadCompressionSpec
from deai.learn.compression.randomk import RandomK

__all__ = ["MAX_KEYS", "SAFETENSORS_OVERHEAD", "Compressor"]

MAX_KEYS = 8
"""The most tensors a compressed update may hold (a chain writes at most 5)."""
SAFETENSORS_OVERHEAD = 4096
"""Bound on a compressed update's safetensors framing (8-byte length, JSON header, padding)."""

_DTYPE_BYTES = {torch.float32: 4, torch.float16: 2, torch.int64: 8, torch.int32: 4, torch.int16: 2}


def _plain(t: object) -> bool:
    """Whether ``t`` is an ordinary dense tensor holding data (not sparse, meta or quantized)."""
    return (
        isinstance(t, torch.Tensor)
        and t.layout == torch.strided
        and t.device.type != "meta"
        and not t.is_quantized
    )


class Compressor:
    """``sparsifier`` (which values travel) then ``quantizer`` (how); either may be ``None``
    (both ``None``: the ``"none"`` scheme, dense float32). Build one with
    :func:`~deai.learn.compression.get_compressor`. Stateless: error feedback lives in
    :class:`~deai.learn.compression.feedback.ErrorFeedback`."""

    def __init__(self, sparsifier: Sparsifier | None = None, quantizer: Quantizer | None = None) -> None:
        self.sparsifier = sparsifier
        self.quantizer = quantizer

    @property
    def spec(self) -> str:
        """Canonical spec string (every argument spelled out); parses back to an equal compressor."""
        stages = [s.spec() for s in (self.sparsifier, self.quantizer) if s is not None]
        return "+".join(stages) or "none"

    def __repr__(self) -> str:
        return f"Compressor({self.spec!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Compressor) and other.spec == self.spec

    def __hash__(self) -> int:
        return hash(self.spec)

    @property
    def ring_compatible(self) -> bool:
        """Whether updates compressed this way add up inside secure aggregation: no quantizer (its
        per-provider scales make codes non-summable) and a support every provider can share (none,
        or random-k drawn from one seed for the round)."""
        return self.quantizer is None and (self.sparsifier is None or self.sparsifier.name == "randomk")

    @property
    def needs_seed(self) -> bool:
        """Whether :meth:`compress` needs ``seed`` (random-k's positions)."""
        return isinstance(self.sparsifier, RandomK)

    @property
    def needs_generator(self) -> bool:
        """Whether :meth:`compress` needs ``generator`` (stochastic rounding)."""
        return self.quantizer is not None and self.quantizer.stochastic

    def max_k(self, d: int) -> int:
        """The most values an update of ``d`` parameters sends."""
        return d if self.sparsifier is None else self.sparsifier.max_k(d)

    def wire(self, d: int, k: int) -> WireSpec:
        """Every tensor of an update sending ``k`` of ``d`` values: key -> (shape, dtype)."""
        out: WireSpec = {HEADER: ((8,), torch.int64)}
        if self.sparsifier is not None:
            out.update(self.sparsifier.wire(d, k))
        out.update(self.quantizer.wire(k) if self.quantizer is not None else {VALUES: ((k,), torch.float32)})
        return out

    def max_bytes(self, d: int) -> int:
        """An upper bound on the safetensors size of any update this compressor accepts for ``d``
        parameters: pass it as ``max_bytes`` to :func:`deai.core.tensorio.from_safetensors`."""
        total = SAFETENSORS_OVERHEAD
        for shape, dtype in self.wire(d, self.max_k(d)).values():
            numel = 1
            for s in shape:
                numel *= s
            total += numel * _DTYPE_BYTES.get(dtype, 1)
        return total

    def header(self, d: int, k: int, seed: int) -> Header:
        """The header of an update sending ``k`` of ``d`` values."""
        s, q = self.sparsifier, self.quantizer
        return Header(
            version=FORMAT_VERSION,
            d=d,
            k=k,
            sparsifier=0 if s is None else s.code,
            sparsifier_chunk=0 if s is None else s.chunk,
            bits=0 if q is None else q.bits,
            quantizer_chunk=0 if q is None else q.chunk,
            seed=seed if self.needs_seed else 0,
        )

    def compress(
        self, x: torch.Tensor, *, seed: int | None = None, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """The wire tensors of ``x`` (a 1-D float tensor of ``d`` finite values, read as float32).

        ``seed`` (an int in ``[0, 2**63)``) picks random-k's positions and travels in the header;
        required for ``randomk``, ignored otherwise. ``generator`` draws stochastic rounding's
        noise; required for ``rounding="stochastic"``, ignored otherwise. Same input, seed and
        generator state: the same bits. :class:`BadCompressed` if ``x`` holds NaN or infinity (or a
        value too large for float16 scales); :class:`BadCompressionSpec` for a missing seed or
        generator.
        """
        if not isinstance(x, torch.Tensor) or x.dim() != 1 or not x.is_floating_point():
            raise BadCompressed("compress takes a 1-D floating-point tensor")
        d = x.numel()
        if not 1 <= d <= MAX_D:
            raise BadCompressed(f"compress takes 1 to {MAX_D} values, got {d}")
        x = x.detach().to(device="cpu", dtype=torch.float32)
        if not bool(torch.isfinite(x).all()):
            raise BadCompressed("the update to compress holds NaN or infinity")
        bad_seed = isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63
        if self.needs_seed and bad_seed:
            raise BadCompressionSpec(f"{self.spec}: compress needs seed=, an int in [0, 2**63)")
        if self.needs_generator and generator is None:
            raise BadCompressionSpec(f"{self.spec}: stochastic rounding needs generator=")
        out: dict[str, torch.Tensor] = {}
        if self.sparsifier is None:
            values = x
        else:
            indices = self.sparsifier.select(x, seed or 0)
            values = x[indices]
            out.update(self.sparsifier.pack(indices, d))
        if self.quantizer is None:
            out[VALUES] = values.clone()
        else:
            out.update(self.quantizer.encode(values, generator))
        out[HEADER] = self.header(d, values.numel(), seed or 0).tensor()
        return out

    def _check_header(self, tensors: object, d: int, seed: int | None) -> Header:
        if not isinstance(tensors, Mapping):
            raise BadCompressed(f"a compressed update is a mapping of names to tensors, not {type(tensors)}")
        if len(tensors) > MAX_KEYS:
            raise BadCompressed(f"a compressed update holds {len(tensors)} tensors, over {MAX_KEYS}")
        if HEADER not in tensors:
            raise BadCompressed(f"a compressed update needs the {HEADER!r} tensor")
        if not _plain(tensors[HEADER]):
            raise BadCompressed(f"{HEADER!r} must be a dense int64 tensor of shape (8,)")
        got = Header.parse(tensors[HEADER])
        want = self.header(d, got.k, got.seed)
        for field in ("version", "d", "sparsifier", "sparsifier_chunk", "bits", "quantizer_chunk", "seed"):
            if getattr(got, field) != getattr(want, field):
                raise BadCompressed(
                    f"header {field} is {getattr(got, field)}, {self.spec} for d={d} needs "
                    f"{getattr(want, field)}"
                )
        if self.needs_seed and (got.seed < 0 or (seed is not None and got.seed != seed)):
            raise BadCompressed(f"header seed is {got.seed}, expected {seed if seed is not None else '>= 0'}")
        k_max = self.max_k(d)
        exact = self.sparsifier is None or self.sparsifier.exact_k()
        if (got.k != k_max) if exact else not 0 <= got.k <= k_max:
            need = f"= {k_max}" if exact else f"in [0, {k_max}]"
            raise BadCompressed(f"header k is {got.k}, {self.spec} for d={d} needs k {need}")
        return got

    def decode(self, tensors: Mapping[str, torch.Tensor], d: int, *, seed: int | None = None) -> SparseUpdate:
        """Check ``tensors`` (a foreign compressed update of a ``d``-parameter vector; see the
        module docstring for every check) and decode it. ``seed``: the random-k seed the receiver
        requires (``None``: any non-negative seed). :class:`BadCompressed` on any failure."""
        if isinstance(d, bool) or not isinstance(d, int) or not 1 <= d <= MAX_D:
            raise BadCompressionSpec(f"d must be an int in [1, {MAX_D}], got {d!r}")
        header = self._check_header(tensors, d, seed)
        expected = self.wire(d, header.k)
        if set(tensors) != set(expected):
            missing = sorted(set(expected) - set(tensors))
            extra = sorted(str(key)[:40] for key in set(tensors) - set(expected))
            raise BadCompressed(f"{self.spec}: tensor names differ: missing {missing}, unexpected {extra}")
        for key, (shape, dtype) in expected.items():
            t = tensors[key]
            if not _plain(t) or t.dtype != dtype or tuple(t.shape) != shape:
                what = f"{t.dtype} {tuple(t.shape)}" if isinstance(t, torch.Tensor) else type(t).__name__
                raise BadCompressed(f"{key!r} is {what}; {self.spec} needs a dense {dtype} {shape}")
        parts = {key: tensors[key].detach().cpu().contiguous() for key in expected}
        indices = None if self.sparsifier is None else self.sparsifier.unpack(parts, header)
        if self.quantizer is None:
            values = parts[VALUES]
            if not bool(torch.isfinite(values).all()):
                raise BadCompressed(f"{VALUES!r} holds NaN or infinity")
            values = values.clone()
        else:
            values = self.quantizer.decode(parts, header.k)
        return SparseUpdate(d, indices, values)

    def check(self, tensors: Mapping[str, torch.Tensor], d: int, *, seed: int | None = None) -> Header:
        """:meth:`decode`'s checks alone; returns the checked header."""
        self.decode(tensors, d, seed=seed)
        return Header.parse(tensors[HEADER])

    def decompress(
        self, tensors: Mapping[str, torch.Tensor], d: int, *, seed: int | None = None
    ) -> torch.Tensor:
        """:meth:`decode` as the dense float32 ``[d]`` vector."""
        return self.decode(tensors, d, seed=seed).dense()
