"""Settlement of a round and provenance of the final model (the interim rule, documented).

**Per round** (one ``post_payout_root`` per round, whatever the number of providers): the round's
pool is ``budget // rounds``. First the coordinator is reimbursed what it paid the executors of the
round's accepted jobs (``fee`` per accepted executor, visible on the ledger); the rest goes to the
contributors in proportion to their positive verified score (the ``score`` job: validation loss of
the checkpoint minus that of checkpoint + update, so a harmful or useless update earns nothing --
reject-on-negative-impact). Amounts are floored; what is not paid stays in the task budget and is
refunded to the creator when the task closes. The allocation is a Merkle tree of (address, amount)
leaves; each participant claims its own leaf with a proof.

**Provenance**: the model's contributors and their shares (basis points summing to 10,000, by the
largest-remainder method over what each data provider earned in all rounds; equal shares if nobody
earned anything) form the ``shares_tree`` whose root ``register_model`` records.

This rule is what the incentives layer (Shapley estimates, reputation) replaces.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from deai.ledger.config import BPS

__all__ = ["provenance_shares", "round_payout"]


def round_payout(
    pool: int,
    reimburse: Mapping[str, int],
    contributors: Sequence[str],
    scores: Sequence[float],
) -> dict[str, int]:
    """{address: amount} for one round; the total never exceeds ``pool``."""
    if len(contributors) != len(scores):
        raise ValueError("one score per contributor")
    out: dict[str, int] = {}
    left = pool
    for address, amount in sorted(reimburse.items()):
        paid = min(amount, left)
        if paid > 0:
            out[address] = out.get(address, 0) + paid
            left -= paid
    positive = [max(float(s), 0.0) for s in scores]
    total = sum(positive)
    if left > 0 and total > 0:
        for address, s in zip(contributors, positive, strict=True):
            amount = int(left * (s / total))
            if amount > 0:
                out[address] = out.get(address, 0) + amount
    return out


def provenance_shares(earned: Mapping[str, int], contributors: Sequence[str]) -> dict[str, int]:
    """Basis-point shares summing to exactly 10,000 (largest remainder), by ``earned``."""
    people = sorted(set(contributors) | {a for a, v in earned.items() if v > 0})
    if not people:
        raise ValueError("a model needs at least one contributor")
    weights = {a: max(int(earned.get(a, 0)), 0) for a in people}
    total = sum(weights.values())
    if total == 0:
        weights, total = {a: 1 for a in people}, len(people)
    exact = {a: BPS * w / total for a, w in weights.items()}
    shares = {a: int(v) for a, v in exact.items()}
    rest = BPS - sum(shares.values())
    for a in sorted(people, key=lambda a: (-(exact[a] - shares[a]), a))[:rest]:
        shares[a] += 1
    return {a: s for a, s in shares.items() if s > 0}
