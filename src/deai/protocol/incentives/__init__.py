"""Incentives: contribution scoring as a verified job, settlement, royalties, reputation, Sybil
economics and the per-task incentive report.

- the ``contribution_score`` job kind (:mod:`deai.protocol.jobs.kinds.contribution_score`) runs
  :mod:`deai.learn.scoring` on a round's committed updates;
- :mod:`~deai.protocol.incentives.split`: the configurable split rule and integer allocation;
- :mod:`~deai.protocol.incentives.settlement`: score book, verified work, one Merkle root, claims;
- :mod:`~deai.protocol.incentives.royalties`: provenance shares, inference fees, royalty claims;
- :mod:`~deai.protocol.incentives.reputation`: oracle updates from verified outcomes;
- :mod:`~deai.protocol.incentives.sybil`: join and compute stakes from the break-even rule, slashing
  of unrewarded members, stake-split weights;
- :mod:`~deai.protocol.incentives.report`: who earned what and why, as JSON and a rich table.

The network settles per round (:mod:`deai.protocol.task.settlement`) with the score book, the split
rule, verified work, the payout tree and provenance from here. **Library pieces** the network does
not run: the reputation oracle (:mod:`~deai.protocol.incentives.reputation`), Sybil slashing
(:func:`slash_unrewarded`) and the one-shot :func:`settle_task`. See ``docs/incentives.md``.
"""

from deai.protocol.incentives.errors import IncentiveError
from deai.protocol.incentives.report import task_report
from deai.protocol.incentives.reputation import ReputationPolicy, apply_reputation, reputation_deltas
from deai.protocol.incentives.royalties import Provenance, pay_inference
from deai.protocol.incentives.settlement import ScoreBook, Settlement, settle_task, verified_work
from deai.protocol.incentives.split import SplitRule, allocate
from deai.protocol.incentives.sybil import slash_unrewarded

__all__ = [
    "IncentiveError",
    "Provenance",
    "ReputationPolicy",
    "ScoreBook",
    "Settlement",
    "SplitRule",
    "allocate",
    "apply_reputation",
    "pay_inference",
    "reputation_deltas",
    "settle_task",
    "slash_unrewarded",
    "task_report",
    "verified_work",
]
