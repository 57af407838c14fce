"""``int2``: 2-bit uniform quantization with per-chunk scales (see :mod:`.quantize`)."""

from __future__ import annotations

from typing import ClassVar

from deai.learn.compression.base import COMPRESSORS
from deai.learn.compression.quantize import UniformQuantizer

__all__ = ["Int2"]


@COMPRESSORS.register("int2")
class Int2(UniformQuantizer):
    """Levels ``{-1.5, -0.5, 0.5, 1.5}`` times the scale: four levels, every code used, no zero
    level (code ``c`` decodes to ``(c - 1.5) * scale``); a chunk's largest magnitude maps to
    ``1.5 * scale``. A zero travels as ``0.5 * scale`` (half to even rounds ``t = 1.5`` to code 2);
    an all-zero chunk has scale 0 and decodes to zeros. A quarter byte per value, four codes per
    byte. The grid is uniform, so stochastic rounding between its levels is unbiased for every
    value within the chunk's range.

    Arguments: ``chunk`` (values per scale, default 256), ``rounding`` (``"nearest"`` or
    ``"stochastic"``), ``scale_dtype`` (``"float16"`` or ``"float32"``)."""

    bits: ClassVar[int] = 2
    center: ClassVar[float] = 1.5
    max_code: ClassVar[int] = 3
