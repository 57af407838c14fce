"""``none``: the identity; the update travels as dense float32 (``values`` ``[d]``), exactly."""

from __future__ import annotations

from typing import ClassVar

from deai.learn.compression.base import COMPRESSORS, Stage

__all__ = ["Dense"]


@COMPRESSORS.register("none", "identity", "dense")
class Dense(Stage):
    """No compression: the spec ``"none"`` (alone in its chain) sends all ``d`` float32 values.
    Round trips are bit-exact; 4 bytes per parameter (plus a fixed header)."""

    kind: ClassVar[str] = "identity"

    def params(self) -> dict[str, object]:
        return {}
