"""Royalties: a model's provenance shares from its contributors' scores, and the inference fee flow.

- :func:`provenance_shares` turns accumulated scores into integer shares summing to ``total``
  (10,000 by default), positive scores only, by the largest-remainder method.
- :class:`Provenance` is the provenance record (checkpoint, task, rounds, scoring method, shares)
  and its Merkle tree; :meth:`Provenance.register` sends ``register_model`` with the tree's root
  and the record's hash, so anyone holding the record can check both. The model id is not in the
  record: the ledger derives it from the registrant, the task and the record's hash
  (:func:`deai.ledger.commitments.model_id`), so nobody else can register under it.
- :func:`pay_inference` sends ``pay_inference_fee``: the ledger pays ``host_bps`` of the fee to the
  serving hosts and puts the rest in the model's royalty pool, raising a per-share index (no loop
  over contributors). :meth:`Provenance.claim` sends a contributor's ``claim_royalty`` with its
  proof; it receives ``shares * (index - index at its last claim)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from deai.core.accounts import Account, check_address
from deai.core.encoding import canonical, sha256_hex
from deai.ledger.base import Ledger, Receipt
from deai.ledger.commitments import model_id
from deai.ledger.config import BPS
from deai.ledger.merkle import AllocationTree, shares_tree
from deai.ledger.txs import ClaimRoyalty, PayInferenceFee, RegisterModel
from deai.protocol.incentives.errors import BadScores, SettlementError
from deai.protocol.incentives.split import apportion

__all__ = ["Provenance", "pay_inference", "provenance_shares"]


def provenance_shares(scores: Mapping[str, float], total: int = BPS) -> dict[str, int]:
    """Integer shares of ``total`` proportional to the positive scores."""
    shares = apportion(total, {check_address(a): s for a, s in scores.items()})
    if not shares:
        raise BadScores("no contributor has a positive score: a model needs at least one share")
    return shares


@dataclass(frozen=True)
class Provenance:
    """A model's provenance record and its shares tree. ``registrant`` is the account that registers
    the model (a task's coordinator for a task's model); ``checkpoint`` the 0x digest of the model's
    checkpoint blob."""

    registrant: str
    checkpoint: str
    task: str | None
    shares: dict[str, int]
    method: str = ""
    rounds: int = 0
    total: int = BPS

    @property
    def tree(self) -> AllocationTree:
        return shares_tree(self.shares, self.total)

    def to_json(self) -> dict[str, Any]:
        return {
            "checkpoint": self.checkpoint,
            "task": self.task,
            "method": self.method,
            "rounds": self.rounds,
            "total_shares": self.total,
            "shares": dict(sorted(self.shares.items())),
            "root": self.tree.root,
        }

    @property
    def document(self) -> str:
        """0x SHA-256 of the canonical record (store the record as a blob under this address)."""
        return "0x" + sha256_hex(canonical(self.to_json()))

    @property
    def model(self) -> str:
        """The model id the ledger gives this record registered by ``registrant``."""
        return model_id(self.registrant, self.task, self.document)

    @classmethod
    def from_scores(
        cls,
        registrant: str,
        checkpoint: str,
        task: str | None,
        scores: Mapping[str, float],
        *,
        method: str = "",
        rounds: int = 0,
    ) -> Provenance:
        return cls(check_address(registrant), checkpoint, task, provenance_shares(scores), method, rounds)

    def register(self, ledger: Ledger, owner: Account, *, host_bps: int = 3_000) -> Receipt:
        """``register_model`` (``owner`` is the registrant; for a task's model, the task's coordinator)."""
        if owner.address != self.registrant:
            raise SettlementError(f"this record is registered by {self.registrant}, not {owner.address}")
        return ledger.send(
            owner,
            RegisterModel(
                model=self.model,
                task=self.task,
                provenance=self.tree.root,
                document=self.document,
                total_shares=self.total,
                host_bps=host_bps,
            ),
        )

    def claim(self, ledger: Ledger, account: Account) -> Receipt:
        """A contributor claims its accrued royalties with the proof of its shares."""
        address = check_address(account.address)
        if address not in self.shares:
            raise SettlementError(f"{address} holds no shares of model {self.model}")
        tree = self.tree
        return ledger.send(
            account,
            ClaimRoyalty(model=self.model, shares=self.shares[address], proof=tuple(tree.proof(address))),
        )

    def owed(self, ledger: Ledger, address: str) -> int:
        address = check_address(address)
        return ledger.royalty_owed(self.model, address, self.shares.get(address, 0))


def pay_inference(ledger: Ledger, payer: Account, model: str, amount: int, hosts: Sequence[str]) -> Receipt:
    """Pay one inference fee: ``host_bps`` to the hosts (equally), the rest to the royalty pool."""
    return ledger.send(payer, PayInferenceFee(model=model, amount=amount, hosts=tuple(hosts)))
