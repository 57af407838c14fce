"""The stages of a compressor (a sparsifier, a quantizer), the wire header, the decoded record.

A compressor (:class:`~deai.learn.compression.compressor.Compressor`) is a chain of at most one
:class:`Sparsifier` (which values travel: top-k, random-k, chunked top-k) followed by at most one
:class:`Quantizer` (how the values travel: int8, int4, int2 codes with per-chunk scales). Each stage
is registered in :data:`COMPRESSORS` by name and owns its part of the wire format: the tensors it
writes, the shapes and dtypes they must have, and the checks of their contents.

Every compressed update starts with the :data:`HEADER` tensor, int64 ``[8]`` (:class:`Header`):
format version, ``d``, ``k`` (values sent), sparsifier id, sparsifier chunk, quantizer bits (0:
float32 values), quantizer chunk, seed (random-k's index seed; 0 otherwise).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import torch

from deai.core.registry import Registry
from deai.learn.compression.errors import BadCompressed, BadCompressionSpec
from deai.learn.errors import UnknownName

__all__ = [
    "COMPRESSORS",
    "FORMAT_VERSION",
    "HEADER",
    "MAX_D",
    "VALUES",
    "Header",
    "Quantizer",
    "SparseUpdate",
    "Sparsifier",
    "Stage",
    "WireSpec",
    "budget",
    "check_ratio",
]

FORMAT_VERSION = 1
HEADER = "header"
"""Key of the int64 ``[8]`` header tensor."""
VALUES = "values"
"""Key of the float32 values when no quantizer follows (``[k]``, or ``[d]`` with no sparsifier)."""
MAX_D = 2**31 - 1
"""The largest ``d`` a compressed update may describe (safetensors shapes are bounded alike)."""

WireSpec = dict[str, tuple[tuple[int, ...], torch.dtype]]
"""Expected wire tensors of a stage: key -> (shape, dtype)."""


def budget(ratio: float, n: int) -> int:
    """How many of ``n`` values a ``ratio`` keeps: ``ceil(ratio * n)`` (tolerant of the float
    rounding of the product), at least 1 and at most ``n``. Sender and checker share this."""
    return min(n, max(1, math.ceil(ratio * n - 1e-6)))


def check_ratio(name: str, ratio: object) -> float:
    """``ratio`` as a float in ``(0, 1]``, or :class:`BadCompressionSpec`."""
    if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 < ratio <= 1:
        raise BadCompressionSpec(f"{name}: ratio must be a number in (0, 1], got {ratio!r}")
    return float(ratio)


def check_int(name: str, key: str, value: object, lo: int, hi: int) -> int:
    """``value`` as an int in ``[lo, hi]``, or :class:`BadCompressionSpec`."""
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise BadCompressionSpec(f"{name}: {key} must be an integer in [{lo}, {hi}], got {value!r}")
    return value


@dataclass(frozen=True)
class Header:
    """The parsed header of a compressed update (every field a checked Python int)."""

    version: int
    d: int
    k: int
    sparsifier: int
    sparsifier_chunk: int
    bits: int
    quantizer_chunk: int
    seed: int

    def tensor(self) -> torch.Tensor:
        """The int64 ``[8]`` wire form."""
        return torch.tensor(
            [
                self.version,
                self.d,
                self.k,
                self.sparsifier,
                self.sparsifier_chunk,
                self.bits,
                self.quantizer_chunk,
                self.seed,
            ],
            dtype=torch.int64,
        )

    @classmethod
    def parse(cls, t: torch.Tensor) -> Header:
        """Read the header tensor (its dtype and shape are checked here)."""
        if not isinstance(t, torch.Tensor) or t.dtype != torch.int64 or tuple(t.shape) != (8,):
            raise BadCompressed(f"{HEADER!r} must be an int64 tensor of shape (8,)")
        return cls(*(int(v) for v in t.tolist()))


@dataclass(frozen=True)
class SparseUpdate:
    """A decompressed update: ``values`` (float32) at ``indices`` (int64, strictly increasing,
    in ``[0, d)``) of a ``d``-vector that is zero elsewhere; ``indices is None`` means dense
    (``values`` holds all ``d``)."""

    d: int
    indices: torch.Tensor | None
    values: torch.Tensor

    def dense(self) -> torch.Tensor:
        """The float32 ``[d]`` vector (a scatter of unique indices: deterministic)."""
        if self.indices is None:
            return self.values
        out = torch.zeros(self.d, dtype=torch.float32)
        out[self.indices] = self.values
        return out


class Stage(ABC):
    """One stage of a compressor chain, built from its spec's keyword arguments."""

    name: ClassVar[str] = "stage"
    kind: ClassVar[str] = "stage"

    @abstractmethod
    def params(self) -> dict[str, object]:
        """The stage's arguments, as its canonical spec writes them."""

    def spec(self) -> str:
        """Canonical spec, e.g. ``"topk(ratio=0.01)"``; ``get_compressor`` parses it back."""
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{self.name}({args})" if args else self.name

    def __repr__(self) -> str:
        return self.spec()


class Sparsifier(Stage):
    """Chooses which of the ``d`` values travel, and writes their positions."""

    kind: ClassVar[str] = "sparsifier"
    code: ClassVar[int] = 0
    """The sparsifier's id in the header."""

    @property
    def chunk(self) -> int:
        """The header's sparsifier chunk (0 when the scheme has none)."""
        return 0

    @abstractmethod
    def max_k(self, d: int) -> int:
        """The most values this sparsifier sends for a ``d``-vector."""

    def exact_k(self) -> bool:
        """Whether every update sends exactly :meth:`max_k` values."""
        return True

    @abstractmethod
    def select(self, x: torch.Tensor, seed: int) -> torch.Tensor:
        """Indices (int64, strictly increasing) of the values of ``x`` (float32 ``[d]``) to send."""

    @abstractmethod
    def wire(self, d: int, k: int) -> WireSpec:
        """The tensors that carry ``k`` positions of a ``d``-vector: key -> (shape, dtype)."""

    @abstractmethod
    def pack(self, indices: torch.Tensor, d: int) -> dict[str, torch.Tensor]:
        """The wire tensors of ``indices`` (from :meth:`select`)."""

    @abstractmethod
    def unpack(self, tensors: dict[str, torch.Tensor], header: Header) -> torch.Tensor:
        """The indices (int64 ``[k]``) from wire tensors whose shapes and dtypes match
        :meth:`wire`; :class:`BadCompressed` unless they are in ``[0, d)`` and strictly increasing."""


class Quantizer(Stage):
    """Encodes ``n`` float32 values as integer codes (and whatever decoding needs)."""

    kind: ClassVar[str] = "quantizer"
    bits: ClassVar[int] = 0
    chunk: int = 0

    @property
    def stochastic(self) -> bool:
        """Whether :meth:`encode` needs a generator."""
        return False

    @abstractmethod
    def wire(self, n: int) -> WireSpec:
        """The tensors that carry ``n`` values: key -> (shape, dtype)."""

    @abstractmethod
    def encode(self, values: torch.Tensor, generator: torch.Generator | None) -> dict[str, torch.Tensor]:
        """The wire tensors of ``values`` (finite float32 ``[n]``)."""

    @abstractmethod
    def decode(self, tensors: dict[str, torch.Tensor], n: int) -> torch.Tensor:
        """The ``n`` float32 values from wire tensors whose shapes and dtypes match :meth:`wire`;
        :class:`BadCompressed` if their contents are out of range."""

    def max_error(self, scale: torch.Tensor) -> torch.Tensor:
        """The largest ``|x - decode(encode(x))|`` for a value whose chunk has ``scale``: half a
        step with nearest rounding, under one step with stochastic rounding."""
        return scale * (1.0 if self.stochastic else 0.5)


COMPRESSORS: Registry[Stage] = Registry("compressor", UnknownName, stamp="name")
"""Every compressor stage (sparsifiers, quantizers, ``none``), by name and alias."""
