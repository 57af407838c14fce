"""Phases of a round and the byte strings that providers sign."""

from __future__ import annotations

import enum
import struct
from collections.abc import Sequence

__all__ = ["Phase", "keys_statement", "survivors_statement"]


class Phase(enum.Enum):
    """advertise keys -> share keys -> masked input -> consistency -> unmask -> done (or aborted)."""

    ADVERTISE = "advertise"
    SHARE = "share"
    MASKED = "masked"
    CONSISTENCY = "consistency"
    UNMASK = "unmask"
    DONE = "done"
    ABORTED = "aborted"


def keys_statement(round_id: bytes, provider: int, enc_key: bytes, mask_key: bytes) -> bytes:
    return b"deai-secagg-keys" + round_id + struct.pack(">I", provider) + enc_key + mask_key


def survivors_statement(round_id: bytes, survivors: Sequence[int]) -> bytes:
    return (
        b"deai-secagg-survivors" + round_id + struct.pack(f">I{len(survivors)}I", len(survivors), *survivors)
    )
