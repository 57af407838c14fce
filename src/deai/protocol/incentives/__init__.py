"""Incentives: contribution scoring as a verified job, settlement, royalties, reputation, Sybil
economics and the per-task incentive report.

- :mod:`~deai.protocol.incentives.scoring_job`: the ``contribution_score`` job kind (registered on
  import), running :mod:`deai.learn.scoring` on a round's committed updates;
- :mod:`~deai.protocol.incentives.split`: the configurable split rule and integer allocation;
- :mod:`~deai.protocol.incentives.settlement`: score book, verified work, one Merkle root, claims;
- :mod:`~deai.protocol.incentives.royalties`: provenance shares, inference fees, royalty claims;
- :mod:`~deai.protocol.incentives.reputation`: oracle updates from verified outcomes;
- :mod:`~deai.protocol.incentives.sybil`: join and compute stakes from the break-even rule, slashing
  of unrewarded members, stake-split weights;
- :mod:`~deai.protocol.incentives.report`: who earned what and why, as JSON and a rich table.

See ``docs/incentives.md``.
"""

from deai.protocol.incentives.errors import BadScores, BadSplit, IncentiveError, SettlementError
from deai.protocol.incentives.report import report_table, task_record, task_report
from deai.protocol.incentives.reputation import (
    ReputationDelta,
    ReputationPolicy,
    apply_reputation,
    reputation_deltas,
)
from deai.protocol.incentives.royalties import Provenance, pay_inference, provenance_shares
from deai.protocol.incentives.settlement import ScoreBook, Settlement, settle_task, verified_work
from deai.protocol.incentives.split import Allocation, SplitRule, allocate, apportion
from deai.protocol.incentives.sybil import (
    compute_stake_ratio_bps,
    min_compute_stake,
    provider_join_stake,
    slash_unrewarded,
    split_weight,
    unrewarded,
)

__all__ = [
    "Allocation",
    "BadScores",
    "BadSplit",
    "IncentiveError",
    "Provenance",
    "ReputationDelta",
    "ReputationPolicy",
    "ScoreBook",
    "Settlement",
    "SettlementError",
    "SplitRule",
    "allocate",
    "apply_reputation",
    "apportion",
    "compute_stake_ratio_bps",
    "min_compute_stake",
    "pay_inference",
    "provenance_shares",
    "provider_join_stake",
    "report_table",
    "reputation_deltas",
    "settle_task",
    "slash_unrewarded",
    "split_weight",
    "task_record",
    "task_report",
    "unrewarded",
    "verified_work",
]
