"""Sybil economics: the stakes that make extra identities and fake work unprofitable.

**Compute.** An executor drawn for a job paying fee ``k`` must hold at least the break-even stake
``((1 - p) k + p q k) / (p (1 - q))`` (:mod:`deai.protocol.jobs.deterrence`), where ``p`` is the
chance the job is replicated and ``q`` the chance that a cheater holding a fraction ``f`` of the
draw weight controls a majority of the ``r`` executors. :func:`compute_stake_ratio_bps` gives the
``stake_fee_ratio_bps`` a network must set for ``(p, r, f)``. A Sybil who splits a stake over k
identities splits its draw weight too (:func:`split_weight`: the weight is linear in stake, each
identity below the role minimum weighs 0, and new identities start without reputation), so the
split never weighs more than the single identity.

**Data.** A provider joins a task by locking the task's ``provider_stake``. A provider whose
accumulated score is not positive (free rider, noise, poisoner) or whose update was merged as a
copy of an earlier one is slashed (:func:`unrewarded`, :func:`slash_unrewarded`): the stake moves
into the task budget and is paid to the contributors. If a fake identity escapes detection with
probability ``1 - d`` and would then earn the per-provider payout ``g``, it does not pay when the
stake ``S`` satisfies ``d S >= (1 - d) g``, the deterrence rule with ``p = d`` and ``q = 0``
(:func:`provider_join_stake`). Scoring makes copies earn nothing beyond the original (merged
players, :mod:`deai.learn.scoring.base`), so splitting one dataset over k identities does not
multiply its pay either (tested in ``tests/protocol/incentives``).

**Library pieces, not network features.** The network uses neither: no hub, coordinator or
daemon calls :func:`slash_unrewarded` (a network task never sends ``slash_member``, so every member
gets its whole ``provider_stake`` back with ``leave_task`` after the close, whatever its score; the
slash is measured by ``benchmarks/incentives.py``), and the stake formulas size a network's config
by hand. Wiring the
slash would take one call in the task coordinator's close-out, after the last round's scores are in
the :class:`~deai.protocol.incentives.settlement.ScoreBook`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from deai.core.accounts import Account
from deai.ledger.base import Ledger, Receipt
from deai.ledger.config import COMPUTE, NetworkConfig
from deai.ledger.draw import draw_weight
from deai.ledger.txs import SlashMember
from deai.protocol.incentives.settlement import ScoreBook
from deai.protocol.jobs.deterrence import majority_chance, min_stake, required_ratio_bps

__all__ = [
    "compute_stake_ratio_bps",
    "min_compute_stake",
    "provider_join_stake",
    "slash_unrewarded",
    "split_weight",
    "unrewarded",
]


def min_compute_stake(fee: int, p: float, r: int, fraction: float) -> int:
    """Least executor stake for fee ``fee`` when a cheater holds ``fraction`` of the draw weight."""
    return math.ceil(min_stake(fee, p, majority_chance(fraction, r)) - 1e-9)


def compute_stake_ratio_bps(p: float, r: int, fraction: float) -> int:
    """The network's ``stake_fee_ratio_bps`` for replication ``(p, r)`` and attacker weight ``fraction``."""
    return required_ratio_bps(p, majority_chance(fraction, r))


def provider_join_stake(expected_payout: int, detection: float) -> int:
    """A task's ``provider_stake``: a fake identity detected with probability ``detection`` loses it,
    one that escapes earns ``expected_payout``; the least stake that makes faking unprofitable."""
    if expected_payout < 0:
        raise ValueError("expected_payout must be >= 0")
    return math.ceil(min_stake(expected_payout, detection, 0.0) - 1e-9)


def split_weight(
    config: NetworkConfig, stake: int, k: int, *, reputation: int = 0, role: str = COMPUTE
) -> tuple[int, int]:
    """(draw weight of one identity holding ``stake`` with ``reputation``, total draw weight of ``k``
    fresh identities holding ``stake // k`` each; identities below the role minimum weigh 0)."""
    if k < 1:
        raise ValueError("k must be >= 1")
    minimum = config.min_stake[role]
    one = draw_weight(config, stake, reputation) if stake >= max(minimum, 1) else 0
    part = stake // k
    each = draw_weight(config, part, 0) if part >= max(minimum, 1) else 0
    return one, k * each


def unrewarded(
    book: ScoreBook, members: Mapping[str, str] | None = None, *, copies: bool = True
) -> list[str]:
    """Addresses that earned nothing: total score <= 0, or (``copies``) merged as a copy in any round.
    ``members`` (address -> role), when given, limits the list to those members."""
    totals = book.totals()
    copied = {a for d in book.duplicates.values() for a in d} if copies else set()
    out = sorted(a for a, s in totals.items() if s <= 0 or a in copied)
    return [a for a in out if members is None or a in members]


def slash_unrewarded(
    ledger: Ledger,
    coordinator: Account,
    task: str,
    book: ScoreBook,
    *,
    fraction_bps: int = 10_000,
    copies: bool = True,
) -> list[Receipt]:
    """Slash ``fraction_bps`` of the task stake of every unrewarded member (into the task budget)."""
    receipts = []
    for address in unrewarded(book, copies=copies):
        member = ledger.member(task, address)
        if member is None or member.stake <= 0:
            continue
        amount = member.stake * fraction_bps // 10_000
        if amount > 0:
            reason = (
                "copy of another update"
                if any(address in d for d in book.duplicates.values())
                else "no positive contribution"
            )
            receipts.append(
                ledger.send(
                    coordinator, SlashMember(task=task, account=address, amount=amount, reason=reason)
                )
            )
    return receipts
