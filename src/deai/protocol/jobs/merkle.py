"""A positional Merkle tree over per-step state hashes, for refereed delegation.

The ledger's tree (:mod:`deai.ledger.merkle`) hashes sorted pairs, so a proof shows that a leaf is
*in* the tree but not *where*; a bisection needs "the state after step t is h", so here the position
is bound twice: each leaf hashes its index, and a proof's left/right order follows the index bits.

- leaf  = sha256(0x00 ‖ t (8 bytes, big-endian) ‖ state hash (32 bytes))
- inner = sha256(0x01 ‖ left ‖ right); a node without a sibling is carried up unchanged.

Proofs are O(log T) sibling hashes. All hashes are 0x-hex at the API.
"""

from __future__ import annotations

from collections.abc import Sequence

from deai.core.encoding import from_hex, sha256, to_hex
from deai.protocol.jobs.errors import DisputeError

__all__ = ["StepTree", "step_leaf", "verify_step"]


def step_leaf(index: int, state_hash: str) -> bytes:
    if not 0 <= index < 2**63:
        raise DisputeError(f"step index {index} out of range")
    return sha256(b"\x00" + index.to_bytes(8, "big") + from_hex(state_hash, length=32, what="state hash"))


def _inner(left: bytes, right: bytes) -> bytes:
    return sha256(b"\x01" + left + right)


def _level_sizes(n: int) -> list[int]:
    sizes = [n]
    while sizes[-1] > 1:
        sizes.append((sizes[-1] + 1) // 2)
    return sizes


class StepTree:
    """The tree over state hashes ``h_0 .. h_T`` (``T + 1`` leaves, in step order)."""

    def __init__(self, state_hashes: Sequence[str]) -> None:
        if not state_hashes:
            raise DisputeError("a step tree needs at least one state hash")
        level = [step_leaf(i, h) for i, h in enumerate(state_hashes)]
        self.levels = [level]
        while len(level) > 1:
            nxt = [_inner(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
            if len(level) % 2:
                nxt.append(level[-1])
            self.levels.append(nxt)
            level = nxt

    @property
    def size(self) -> int:
        return len(self.levels[0])

    @property
    def root(self) -> str:
        return to_hex(self.levels[-1][0])

    def proof(self, index: int) -> list[str]:
        if not 0 <= index < self.size:
            raise DisputeError(f"no leaf {index} in a tree of {self.size}")
        out = []
        for level in self.levels[:-1]:
            sibling = index ^ 1
            if sibling < len(level):
                out.append(to_hex(level[sibling]))
            index //= 2
        return out


def verify_step(root: str, size: int, index: int, state_hash: str, proof: Sequence[str]) -> bool:
    """True iff ``proof`` shows leaf ``index`` of the ``size``-leaf tree with ``root`` is ``state_hash``."""
    if not 0 <= index < size:
        return False
    try:
        node = step_leaf(index, state_hash)
        it = iter(proof)
        for width in _level_sizes(size)[:-1]:
            if index ^ 1 < width:
                sibling = from_hex(next(it), length=32, what="proof hash")
                node = _inner(node, sibling) if index % 2 == 0 else _inner(sibling, node)
            index //= 2
        if next(it, None) is not None:
            return False
        return to_hex(node) == root
    except (StopIteration, ValueError):
        return False
