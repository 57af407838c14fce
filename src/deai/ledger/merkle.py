"""Merkle trees of (account, amount) leaves, for settlement and royalties without loops.

A payout of many participants is posted as one root; each participant claims its own leaf with a
proof (O(log n) hashes). The same leaves (account, shares) carry a model's provenance.

The hashing is EVM-friendly and domain-separated (a leaf can never pass for an inner node):

- leaf  = keccak256(0x00 ‖ address (20 bytes) ‖ amount (32-byte big-endian))
- inner = keccak256(0x01 ‖ min(a, b) ‖ max(a, b))   (sorted pair: proofs need no left/right bits)

A node without a sibling on its level is carried up unchanged. Leaves are ordered by address, so
the same allocation always gives the same root.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from deai.core.accounts import check_address
from deai.core.encoding import from_hex, keccak256, to_hex
from deai.ledger.config import BPS, MAX_AMOUNT
from deai.ledger.errors import LedgerError

__all__ = [
    "AllocationTree",
    "MerkleTree",
    "leaf_hash",
    "node_hash",
    "payout_tree",
    "shares_tree",
    "verify_proof",
]


def leaf_hash(address: str, amount: int) -> bytes:
    """The leaf of ``amount`` for ``address``."""
    if isinstance(amount, bool) or not isinstance(amount, int) or not 0 <= amount <= MAX_AMOUNT:
        raise LedgerError(f"leaf amount must be an integer in [0, 2**53), got {amount!r}")
    return keccak256(b"\x00" + from_hex(address, length=20, what="address") + amount.to_bytes(32, "big"))


def node_hash(a: bytes, b: bytes) -> bytes:
    return keccak256(b"\x01" + a + b) if a <= b else keccak256(b"\x01" + b + a)


def _as_bytes(h: str | bytes) -> bytes:
    return h if isinstance(h, bytes) else from_hex(h, length=32, what="proof hash")


def verify_proof(leaf: bytes, proof: Sequence[str | bytes], root: str | bytes) -> bool:
    """True when folding ``proof`` over ``leaf`` gives ``root``."""
    node = leaf
    for sibling in proof:
        node = node_hash(node, _as_bytes(sibling))
    return node == _as_bytes(root)


class MerkleTree:
    """A tree over the given leaf hashes (in the given order)."""

    def __init__(self, leaves: Sequence[bytes]) -> None:
        if not leaves:
            raise LedgerError("a Merkle tree needs at least one leaf")
        levels = [list(leaves)]
        while len(levels[-1]) > 1:
            below = levels[-1]
            above = [node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)]
            if len(below) % 2:
                above.append(below[-1])
            levels.append(above)
        self.levels = levels

    @property
    def root(self) -> bytes:
        return self.levels[-1][0]

    def proof(self, index: int) -> list[str]:
        """Sibling hashes (0x-hex) from leaf ``index`` up to the root."""
        out = []
        for level in self.levels[:-1]:
            sibling = index ^ 1
            if sibling < len(level):
                out.append(to_hex(level[sibling]))
            index //= 2
        return out


@dataclass(frozen=True)
class AllocationTree:
    """A Merkle tree over an allocation {address: amount}: what a settlement posts and claims use."""

    amounts: dict[str, int]
    tree: MerkleTree = field(repr=False)
    index: dict[str, int] = field(repr=False)

    @property
    def root(self) -> str:
        return to_hex(self.tree.root)

    @property
    def total(self) -> int:
        return sum(self.amounts.values())

    def proof(self, address: str) -> list[str]:
        try:
            return self.tree.proof(self.index[check_address(address)])
        except KeyError:
            raise LedgerError(f"{address} is not in this allocation") from None


def payout_tree(amounts: Mapping[str, int]) -> AllocationTree:
    """Build the tree of a payout. Zero amounts are left out; addresses are checksummed."""
    clean: dict[str, int] = {}
    for address, amount in amounts.items():
        a = check_address(address)
        if a in clean:
            raise LedgerError(f"{a} appears twice in the allocation")
        leaf_hash(a, amount)  # range check
        if amount:
            clean[a] = amount
    if not clean:
        raise LedgerError("an allocation needs at least one positive amount")
    order = sorted(clean)
    tree = MerkleTree([leaf_hash(a, clean[a]) for a in order])
    return AllocationTree(clean, tree, {a: i for i, a in enumerate(order)})


def shares_tree(shares: Mapping[str, int], total: int = BPS) -> AllocationTree:
    """Build a model's provenance tree; the shares must sum to ``total`` (default 10,000)."""
    tree = payout_tree(shares)
    if tree.total != total:
        raise LedgerError(f"provenance shares sum to {tree.total}, not {total}")
    return tree
