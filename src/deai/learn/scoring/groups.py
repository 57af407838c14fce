"""Near-duplicate updates: which providers sent (almost) the same update as an earlier one.

Two providers training on the same data from the same global model send updates that differ only
by their batch order; on digits their cosine similarity is about 0.97-0.99, while updates on
different (IID) data stay below about 0.7 (measured in ``docs/results/incentives.md``). A Sybil
copy, a scaled copy and a re-sent update all land above the threshold.

:func:`duplicate_groups` links each update to the earliest earlier update with cosine similarity
``>= threshold`` (single linkage, so chains of copies form one group) and returns each provider's
group leader: the first member in commit order. Zero updates are never grouped: they carry no
direction (they are scored as what they are, a contribution of nothing).
"""

from __future__ import annotations

import torch

__all__ = ["duplicate_groups"]


def duplicate_groups(updates: torch.Tensor, threshold: float = 0.95) -> torch.Tensor:
    """Long ``[n]``: the index of each row's group leader (itself if it copies nobody)."""
    n = updates.shape[0]
    u = updates.double()
    norms = u.norm(dim=1)
    live = norms > 0
    unit = u / norms.clamp_min(torch.finfo(torch.float64).tiny)[:, None]
    sim = unit @ unit.T
    earlier = torch.ones(n, n, dtype=torch.bool).tril(-1)  # j < i
    link = (sim >= threshold) & earlier & live[:, None] & live[None, :]
    idx = torch.arange(n)
    # first earlier match, else itself
    first = torch.where(link.any(1), link.float().argmax(1), idx)
    leader = first
    for _ in range(max(1, n.bit_length())):  # pointer jumping resolves chains in log n steps
        nxt = leader[leader]
        if torch.equal(nxt, leader):
            break
        leader = nxt
    return leader
