"""Who earned what and who was slashed, read back from the ledger's events.

Everything here is recomputed from the ledger (any party can do the same), never from what the
runner believes happened.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from deai.ledger.base import Ledger

__all__ = ["earnings"]


def earnings(ledger: Ledger) -> dict[str, dict[str, int]]:
    """Per account: ``earned`` (task payouts claimed, job fees and slash rewards, royalties
    claimed) and ``slashed`` (job faults, task-stake slashes, direct slashes)."""
    out: dict[str, dict[str, int]] = defaultdict(lambda: {"earned": 0, "slashed": 0, "jobs_won": 0})
    for ev in ledger.events():
        d: dict[str, Any] = ev.data
        if ev.kind in ("claimed", "royalty_claimed"):
            out[d["account"]]["earned"] += d["amount"]
        elif ev.kind == "job_resolved" and d["accepted"]:
            each = d["paid"] // len(d["accepted"]) + d["slash_reward"]
            for a in d["accepted"]:
                out[a]["earned"] += each
                out[a]["jobs_won"] += 1
        elif ev.kind in ("slashed", "member_slashed"):
            out[d["account"]]["slashed"] += d["amount"]
    return dict(out)
