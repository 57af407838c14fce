"""``int8``: 8-bit uniform quantization with per-chunk scales (see :mod:`.quantize`)."""

from __future__ import annotations

from typing import ClassVar

from deai.learn.compression.base import COMPRESSORS
from deai.learn.compression.quantize import UniformQuantizer

__all__ = ["Int8"]


@COMPRESSORS.register("int8")
class Int8(UniformQuantizer):
    """Levels ``-127 .. 127`` times the scale (code ``c`` decodes to ``(c - 127) * scale``; 255
    is never sent). 1 byte per value.

    Arguments: ``chunk`` (values per scale, default 256), ``rounding`` (``"nearest"`` or
    ``"stochastic"``), ``scale_dtype`` (``"float16"`` or ``"float32"``)."""

    bits: ClassVar[int] = 8
    center: ClassVar[float] = 127.0
    max_code: ClassVar[int] = 254
