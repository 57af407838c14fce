"""Rules for models: provenance, inference fees and royalties without loops over contributors.

A model's id is ``model_id(registrant, task, document)`` (:mod:`deai.ledger.commitments`): derived
from who registers it, so an id cannot be squatted. A model's provenance is the Merkle root of
(contributor, shares) leaves summing to ``total_shares``. Every fee's royalty part goes into the
model's pool and raises a per-share index (integer units per share; the remainder is carried to the
next fee, so nothing is lost to rounding). A contributor claims ``shares * (index - index at its
last claim)`` with a proof of its leaf: one transaction per claim, whatever the number of
contributors (the staking-rewards pattern).
"""

from __future__ import annotations

from dataclasses import replace

from deai.ledger.commitments import model_id
from deai.ledger.config import BPS, HOST
from deai.ledger.errors import (
    BadModelId,
    BadProof,
    DuplicateEntity,
    MalformedTx,
    NothingToClaim,
    PoolExhausted,
    StakeBelowMinimum,
    UnknownModel,
)
from deai.ledger.merkle import leaf_hash, verify_proof
from deai.ledger.records import ModelRecord
from deai.ledger.rules.base import Call, credit, debit, handles
from deai.ledger.rules.tasks import get_task
from deai.ledger.state import State, key
from deai.ledger.txs import ClaimRoyalty, PayInferenceFee, RegisterModel

__all__ = ["accrue_royalty", "royalty_owed"]


def accrue_royalty(state: State, model_id: str, amount: int) -> None:
    """Add ``amount`` to a model's pool and raise its per-share index (no loop over contributors)."""
    if not amount:
        return
    model = state.model(model_id)
    if model is None:
        raise UnknownModel(f"no model {model_id}")
    carry = model.carry + amount
    step = carry // model.total_shares
    state.put_model(
        model_id,
        replace(
            model,
            pool=model.pool + amount,
            index=model.index + step,
            carry=carry - step * model.total_shares,
        ),
    )


def royalty_owed(state: State, model_id: str, account: str, shares: int) -> int:
    """What ``account`` holding ``shares`` could claim now (its proof is checked at claim time)."""
    model = state.model(model_id)
    if model is None:
        raise UnknownModel(f"no model {model_id}")
    return shares * (model.index - state.num("royalty_index", key(model_id, account)))


@handles(RegisterModel)
def register_model(c: Call, tx: RegisterModel) -> None:
    if c.state.model(tx.model) is not None:
        raise DuplicateEntity(f"model {tx.model} is registered")
    if tx.task is not None:
        task = get_task(c.state, tx.task)
        c.require_sender(task.coordinator, f"register a model of task {tx.task} (its coordinator)")
    # The id is bound to its registrant, so nobody can take an id another party is about to use
    # (a public checkpoint digest, say) and collect its royalties.
    expected = model_id(c.sender, tx.task, tx.document)
    if tx.model != expected:
        raise BadModelId(f"a model registered by {c.sender} with this task and document has id {expected}")
    c.state.put_model(
        tx.model,
        ModelRecord(
            owner=c.sender,
            task=tx.task,
            provenance=tx.provenance,
            document=tx.document,
            total_shares=tx.total_shares,
            host_bps=tx.host_bps,
            index=0,
            carry=0,
            pool=0,
        ),
    )
    c.emit("model_registered", model=tx.model, owner=c.sender, task=tx.task, provenance=tx.provenance)


@handles(PayInferenceFee)
def pay_inference_fee(c: Call, tx: PayInferenceFee) -> None:
    model = c.state.model(tx.model)
    if model is None:
        raise UnknownModel(f"no model {tx.model}")
    if not tx.hosts:
        raise MalformedTx("pay_inference_fee needs at least one host")
    minimum = c.config.min_stake[HOST]
    for h in tx.hosts:
        staked = c.state.num("stakes", key(h, HOST))
        if staked < minimum or staked == 0:
            raise StakeBelowMinimum(f"{h} is not a staked host (stake {staked}, minimum {minimum})")
    debit(c.state, c.sender, tx.amount, "pay the inference fee")
    per_host = tx.amount * model.host_bps // BPS // len(tx.hosts)
    for h in tx.hosts:
        credit(c.state, h, per_host)
    royalty = tx.amount - per_host * len(tx.hosts)
    accrue_royalty(c.state, tx.model, royalty)
    c.emit(
        "inference_paid",
        model=tx.model,
        payer=c.sender,
        hosts=list(tx.hosts),
        per_host=per_host,
        royalty=royalty,
    )


@handles(ClaimRoyalty)
def claim_royalty(c: Call, tx: ClaimRoyalty) -> None:
    model = c.state.model(tx.model)
    if model is None:
        raise UnknownModel(f"no model {tx.model}")
    if not verify_proof(leaf_hash(c.sender, tx.shares), tx.proof, model.provenance):
        raise BadProof(f"the proof for ({c.sender}, {tx.shares} shares) does not lead to the provenance root")
    owed = royalty_owed(c.state, tx.model, c.sender, tx.shares)
    if owed <= 0:
        raise NothingToClaim(f"{c.sender} has no royalties of model {tx.model} to claim")
    if owed > model.pool:
        raise PoolExhausted(f"the royalty pool holds {model.pool}, the claim is {owed}")
    c.state.put_model(tx.model, replace(model, pool=model.pool - owed))
    c.state.put("royalty_index", key(tx.model, c.sender), model.index)
    credit(c.state, c.sender, owed)
    c.emit("royalty_claimed", model=tx.model, account=c.sender, shares=tx.shares, amount=owed)
