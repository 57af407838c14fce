"""Who earned what and who was slashed, read back from the ledger's events.

Everything here is recomputed from the ledger (any party can do the same), never from what the
runner believes happened.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from deai.ledger.base import Ledger
from deai.protocol.incentives.report import Statement

__all__ = ["Earnings", "earnings"]


@dataclass
class Earnings:
    """One account's money as the ledger's events tell it: ``earned`` (task payouts claimed, job
    fees and slash rewards, inference fees, royalties claimed; by source in ``by_source``),
    ``slashed`` (what it lost for cheating or for a duty it accepted and failed: job faults,
    task-stake slashes, direct slashes; one line per slash in ``reasons``), the jobs it won
    (``jobs_won``) and, apart from those, ``missed``: the jobs it was drawn for and never committed
    to (a liveness fault -- not running, busy, or refusing the job by its policy -- which costs no
    stake). Every role of the account together."""

    earned: int = 0
    slashed: int = 0
    jobs_won: int = 0
    missed: int = 0
    by_source: dict[str, int] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)


def earnings(ledger: Ledger) -> dict[str, Earnings]:
    """Every account that earned, lost or missed anything, with its :class:`Earnings`: the
    network's :class:`~deai.protocol.incentives.report.Statement` summed over roles (the figures
    ``deai incentives report`` and the hub's dashboard show)."""
    out: dict[str, Earnings] = defaultdict(Earnings)
    for row in Statement.of(ledger).rows.values():
        e = out[row.account]
        e.earned += row.earned_total
        e.slashed += row.slashed
        e.jobs_won += row.won
        e.missed += row.missed
        for source, amount in row.earned.items():
            e.by_source[source] = e.by_source.get(source, 0) + amount
        e.reasons += row.reasons
    return dict(out)
