"""Uniform quantization with one scale per chunk of values; the base of ``int8``, ``int4``, ``int2``.

A value ``x`` in a chunk with scale ``s`` travels as an integer code ``c`` in ``[0, max_code]``
and decodes to ``(c - center) * s`` (float32: an exact subtraction, one rounded product). The
scale of a chunk is ``max|x| / (max_code - center)``, so the chunk's largest value maps to an
end of the grid; with ``scale_dtype="float16"`` it is rounded *up* to the next float16 (every code
stays in range), and a chunk whose scale would overflow float16 is refused (use ``float32``).

Rounding: ``"nearest"`` (half to even; error at most ``s / 2``, deterministic) or
``"stochastic"`` (``floor(t + u)`` with ``u`` uniform in ``[0, 1)`` from the caller's
``torch.Generator``; unbiased, error under ``s``).

Wire: ``codes`` uint8 ``[ceil(n * bits / 8)]`` (``8 // bits`` codes per byte, the first in the
lowest bits, the last byte's padding codes zero) and ``scales`` ``[ceil(n / chunk)]`` float16 or
float32. A receiver refuses codes above ``max_code``, non-zero padding, scales that are negative,
non-finite or over :data:`MAX_SCALE`.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch

from deai.learn.compression._bits import pack_codes, unpack_codes
from deai.learn.compression.base import Quantizer, WireSpec, check_int
from deai.learn.compression.errors import BadCompressed, BadCompressionSpec

__all__ = ["CODES", "MAX_SCALE", "ROUNDINGS", "SCALES", "SCALE_DTYPES", "UniformQuantizer"]

CODES = "codes"
SCALES = "scales"
MAX_SCALE = 2.0**100
"""The largest scale a receiver accepts: decoded values stay far inside float32's range."""
ROUNDINGS = ("nearest", "stochastic")
SCALE_DTYPES = {"float16": torch.float16, "float32": torch.float32}


def _round_up_half(scale: torch.Tensor) -> torch.Tensor:
    """Non-negative float32 scales as the smallest float16 not below them (inf if none is finite)."""
    half = scale.to(torch.float16)
    bits = half.view(torch.int16) + (half.to(torch.float32) < scale).to(torch.int16)
    return bits.view(torch.float16)


class UniformQuantizer(Quantizer):
    """Per-chunk symmetric uniform quantization; subclasses fix ``bits``, ``center``, ``max_code``."""

    bits: ClassVar[int] = 8
    center: ClassVar[float] = 127.0
    max_code: ClassVar[int] = 254

    def __init__(self, chunk: int = 256, rounding: str = "nearest", scale_dtype: str = "float16") -> None:
        self.chunk = check_int(self.name, "chunk", chunk, 1, 65536)
        if rounding not in ROUNDINGS:
            raise BadCompressionSpec(f"{self.name}: rounding must be one of {ROUNDINGS}, got {rounding!r}")
        if scale_dtype not in SCALE_DTYPES:
            raise BadCompressionSpec(
                f"{self.name}: scale_dtype must be one of {sorted(SCALE_DTYPES)}, got {scale_dtype!r}"
            )
        self.rounding = rounding
        self.scale_dtype = scale_dtype

    @property
    def stochastic(self) -> bool:
        return self.rounding == "stochastic"

    @property
    def levels(self) -> float:
        """``max_code - center``: the grid's half-width in steps (the chunk's max maps to it)."""
        return self.max_code - self.center

    def params(self) -> dict[str, object]:
        return {"chunk": self.chunk, "rounding": self.rounding, "scale_dtype": self.scale_dtype}

    def wire(self, n: int) -> WireSpec:
        return {
            CODES: ((math.ceil(n * self.bits / 8),), torch.uint8),
            SCALES: ((math.ceil(n / self.chunk),), SCALE_DTYPES[self.scale_dtype]),
        }

    def scales_of(self, values: torch.Tensor) -> torch.Tensor:
        """The per-chunk scales of ``values`` in the wire dtype."""
        n = values.numel()
        padded = torch.zeros(math.ceil(n / self.chunk) * self.chunk, dtype=torch.float32)
        padded[:n] = values
        scale = padded.view(-1, self.chunk).abs().amax(1) / self.levels
        if self.scale_dtype == "float16":
            scale16 = _round_up_half(scale)
            if not bool(torch.isfinite(scale16).all()):
                raise BadCompressed(
                    f"{self.name}: a value of {float(scale.max()) * self.levels:.3g} is too large for "
                    "float16 scales; use scale_dtype='float32'"
                )
            return scale16
        return scale

    def encode(self, values: torch.Tensor, generator: torch.Generator | None) -> dict[str, torch.Tensor]:
        n = values.numel()
        scales = self.scales_of(values)
        step = scales.to(torch.float32).repeat_interleave(self.chunk)[:n]
        t = values / torch.where(step > 0, step, torch.ones_like(step)) + self.center
        if self.stochastic:
            if generator is None:
                raise BadCompressionSpec(f"{self.name}: stochastic rounding needs a torch.Generator")
            q = torch.floor(t + torch.rand(n, generator=generator, dtype=torch.float32))
        else:
            q = torch.round(t)
        codes = q.clamp_(0, self.max_code).to(torch.uint8)
        return {CODES: pack_codes(codes, self.bits), SCALES: scales}

    def decode(self, tensors: dict[str, torch.Tensor], n: int) -> torch.Tensor:
        scales = tensors[SCALES].to(torch.float32)
        if scales.numel() and not (bool(torch.isfinite(scales).all()) and float(scales.min()) >= 0):
            raise BadCompressed(f"{self.name}: scales must be finite and non-negative")
        if scales.numel() and float(scales.max()) > MAX_SCALE:
            raise BadCompressed(f"{self.name}: a scale is over {MAX_SCALE:g}")
        codes, pad_clean = unpack_codes(tensors[CODES], self.bits, n)
        if not pad_clean:
            raise BadCompressed(f"{self.name}: the padding codes of the last byte must be zero")
        if codes.numel() and int(codes.max()) > self.max_code:
            raise BadCompressed(f"{self.name}: a code is over {self.max_code}")
        step = scales.repeat_interleave(self.chunk)[:n]
        return (codes.to(torch.float32) - self.center) * step
