"""Who earned what and who was slashed, read back from the ledger's events.

Everything here is recomputed from the ledger (any party can do the same), never from what the
runner believes happened.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from deai.ledger.base import Ledger

__all__ = ["Earnings", "earnings"]


@dataclass
class Earnings:
    """One account's money as the ledger's events tell it: ``earned`` (task payouts claimed, job
    fees and slash rewards, royalties claimed), ``slashed`` (what it lost for cheating or for a
    duty it accepted and failed: job faults, task-stake slashes, direct slashes), the jobs it won
    (``jobs_won``) and, apart from those, ``missed``: the jobs it was drawn for and never committed
    to (a liveness fault -- not running, busy, or refusing the job by its policy -- which costs no
    stake)."""

    earned: int = 0
    slashed: int = 0
    jobs_won: int = 0
    missed: int = 0


def earnings(ledger: Ledger) -> dict[str, Earnings]:
    """Every account that earned, lost or missed anything, with its :class:`Earnings`."""
    out: dict[str, Earnings] = defaultdict(Earnings)
    for ev in ledger.events():
        d: dict[str, Any] = ev.data
        if ev.kind in ("claimed", "royalty_claimed"):
            out[d["account"]].earned += d["amount"]
        elif ev.kind == "job_resolved":
            for a in d.get("missed") or ():
                out[a].missed += 1
            if d["accepted"]:
                each = d["paid"] // len(d["accepted"]) + d["slash_reward"]
                for a in d["accepted"]:
                    out[a].earned += each
                    out[a].jobs_won += 1
        elif ev.kind in ("slashed", "member_slashed"):
            out[d["account"]].slashed += d["amount"]
    return dict(out)
