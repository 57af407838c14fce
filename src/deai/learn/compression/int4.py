"""``int4``: 4-bit uniform quantization with per-chunk scales (see :mod:`.quantize`)."""

from __future__ import annotations

from typing import ClassVar

from deai.learn.compression.base import COMPRESSORS
from deai.learn.compression.quantize import UniformQuantizer

__all__ = ["Int4"]


@COMPRESSORS.register("int4")
class Int4(UniformQuantizer):
    """Levels ``-7 .. 7`` times the scale (code ``c`` decodes to ``(c - 7) * scale``; 15 is never
    sent). Half a byte per value, two codes per byte.

    Arguments: ``chunk`` (values per scale, default 256), ``rounding`` (``"nearest"`` or
    ``"stochastic"``), ``scale_dtype`` (``"float16"`` or ``"float32"``)."""

    bits: ClassVar[int] = 4
    center: ClassVar[float] = 7.0
    max_code: ClassVar[int] = 14
