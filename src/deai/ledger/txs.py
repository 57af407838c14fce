"""The transaction set. Each class is one ``kind``; :mod:`deai.ledger.rules` says what it does.

Funds: ``mint`` (minter only), ``transfer``, ``stake`` / ``unstake`` per role (unstaked funds wait
``unbonding_delay_ms`` in an unbonding bucket), ``withdraw`` (unbonded funds back to the balance),
``slash`` (slasher only), ``update_reputation`` (reputation oracle only).

Tasks: ``create_task`` (escrows a budget), ``join_task`` (locks the task's provider stake),
``checkpoint`` (per-round global checkpoint hash), ``post_payout_root`` (moves part of the budget
into a Merkle-rooted payout), ``claim`` (one participant's share, with a proof), ``slash_member``,
``close_task`` (refunds the rest of the budget), ``leave_task`` (returns a member's task stake),
``cancel_task`` (the creator takes back a task nobody joined).

Jobs (verified computation): ``register_job`` (escrows the fee, draws executors), ``commit`` (a
drawn executor accepts the job; its stake is locked until resolution),
``reveal``, ``reveal_replication`` (the creator's hidden-sampling choice), ``resolve_job`` (exact
majority, anyone), ``accept_result`` (the job's resolver names the accepted executors, for outputs
compared within a tolerance).

Models: ``register_model`` (id bound to the registrant, provenance as a Merkle root of shares),
``pay_inference_fee`` (split between hosts and the model's royalty pool), ``claim_royalty``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from deai.ledger.config import COMPUTE, MAX_AMOUNT
from deai.ledger.tx import (
    Address,
    Addresses,
    Amount,
    Bool,
    Hash,
    Hashes,
    Label,
    OptAddress,
    OptHash,
    Positive,
    Proof,
    Role,
    Tx,
    int_range,
    register,
)

__all__ = [
    "AcceptResult",
    "CancelTask",
    "ClaimPayout",
    "ClaimRoyalty",
    "CloseTask",
    "Commit",
    "CreateTask",
    "JoinTask",
    "LeaveTask",
    "Mint",
    "PayInferenceFee",
    "PostCheckpoint",
    "PostPayoutRoot",
    "RegisterJob",
    "RegisterModel",
    "ResolveJob",
    "Reveal",
    "RevealReplication",
    "Slash",
    "SlashMember",
    "Stake",
    "Transfer",
    "Unstake",
    "UpdateReputation",
    "Withdraw",
]

Epoch = Annotated[int, int_range(0, MAX_AMOUNT)]
Round = Annotated[int, int_range(1, MAX_AMOUNT)]
Count = Annotated[int, int_range(1, 1024)]
Index = Annotated[int, int_range(0, 1023)]
Window = Annotated[int, int_range(1, 2**40)]
Delta = Annotated[int, int_range(-1_000_000, 1_000_000)]
Bps = Annotated[int, int_range(0, 10_000)]


# -- funds --------------------------------------------------------------------------------------------


@register("mint")
@dataclass(frozen=True)
class Mint(Tx):
    to: Address
    amount: Positive


@register("transfer")
@dataclass(frozen=True)
class Transfer(Tx):
    to: Address
    amount: Positive


@register("stake")
@dataclass(frozen=True)
class Stake(Tx):
    role: Role
    amount: Positive


@register("unstake")
@dataclass(frozen=True)
class Unstake(Tx):
    role: Role
    amount: Positive


@register("withdraw")
@dataclass(frozen=True)
class Withdraw(Tx):
    role: Role


@register("slash")
@dataclass(frozen=True)
class Slash(Tx):
    account: Address
    role: Role
    amount: Positive
    reason: Label = ""


@register("update_reputation")
@dataclass(frozen=True)
class UpdateReputation(Tx):
    account: Address
    role: Role
    delta: Delta
    reason: Label = ""


# -- tasks --------------------------------------------------------------------------------------------


@register("create_task")
@dataclass(frozen=True)
class CreateTask(Tx):
    """``task`` is the task id (the hash of its spec); ``coordinator`` defaults to the creator."""

    task: Hash
    budget: Amount
    params: Hash
    provider_stake: Amount = 0
    coordinator: OptAddress = None


@register("join_task")
@dataclass(frozen=True)
class JoinTask(Tx):
    task: Hash
    role: Role


@register("checkpoint")
@dataclass(frozen=True)
class PostCheckpoint(Tx):
    task: Hash
    round: Round
    checkpoint: Hash


@register("post_payout_root")
@dataclass(frozen=True)
class PostPayoutRoot(Tx):
    """``job``, when set, names a resolved job of this task whose accepted digest is ``root``."""

    task: Hash
    epoch: Epoch
    root: Hash
    total: Positive
    job: OptHash = None


@register("claim")
@dataclass(frozen=True)
class ClaimPayout(Tx):
    task: Hash
    epoch: Epoch
    amount: Positive
    proof: Proof


@register("slash_member")
@dataclass(frozen=True)
class SlashMember(Tx):
    """The coordinator moves part of a member's task stake into the task budget."""

    task: Hash
    account: Address
    amount: Positive
    reason: Label = ""


@register("close_task")
@dataclass(frozen=True)
class CloseTask(Tx):
    task: Hash


@register("leave_task")
@dataclass(frozen=True)
class LeaveTask(Tx):
    task: Hash


@register("cancel_task")
@dataclass(frozen=True)
class CancelTask(Tx):
    """The creator closes its open task before any member joined, and gets the whole budget back.
    Once someone joined, only the coordinator closes the task (members are owed their rounds)."""

    task: Hash


# -- jobs ---------------------------------------------------------------------------------------------


@register("register_job")
@dataclass(frozen=True)
class RegisterJob(Tx):
    """A verified job. ``job`` is its id (the hash of its spec); ``fee`` (at least the network's
    ``min_job_fee``) is paid per accepted executor, escrowed from the creator, or from the task's
    budget for a task's job (then only the task's coordinator may register it).

    ``executors`` are drawn at registration among the staked ``role`` providers (``compute_provider``
    or ``host``; a host job names its ``model``); a drawn executor takes the duty only by committing.
    Windows are at most the network's ``max_job_window_ms``. ``replication`` commits to the
    hidden-sampling choice (see :func:`deai.ledger.commitments.replication_commitment`).
    ``resolver`` (optional: the task's coordinator, or the creator or a network resolver) may accept
    results compared within a tolerance; ``quorum`` is 0 (a strict majority) or a strict majority
    of ``executors``. ``model`` (optional) routes royalties of each paid fee to a registered model.
    """

    job: Hash
    task: OptHash
    job_type: Label
    inputs: Hashes
    fee: Amount
    executors: Count
    replication: Hash
    commit_window_ms: Window
    reveal_window_ms: Window
    role: Role = COMPUTE
    resolver: OptAddress = None
    quorum: Index = 0
    model: OptHash = None


@register("commit")
@dataclass(frozen=True)
class Commit(Tx):
    job: Hash
    commitment: Hash


@register("reveal")
@dataclass(frozen=True)
class Reveal(Tx):
    job: Hash
    digest: Hash
    salt: Hash


@register("reveal_replication")
@dataclass(frozen=True)
class RevealReplication(Tx):
    job: Hash
    replicated: Bool
    primary: Index
    salt: Hash


@register("resolve_job")
@dataclass(frozen=True)
class ResolveJob(Tx):
    job: Hash


@register("accept_result")
@dataclass(frozen=True)
class AcceptResult(Tx):
    job: Hash
    accepted: Addresses


# -- models -------------------------------------------------------------------------------------------


@register("register_model")
@dataclass(frozen=True)
class RegisterModel(Tx):
    """``provenance`` is the Merkle root of (contributor, shares) leaves summing to ``total_shares``
    (build it with :func:`deai.ledger.merkle.shares_tree`); ``document`` the hash of the full
    provenance record (a blob); ``host_bps`` the hosts' part of each inference fee."""

    model: Hash
    task: OptHash
    provenance: Hash
    document: Hash
    total_shares: Positive
    host_bps: Bps


@register("pay_inference_fee")
@dataclass(frozen=True)
class PayInferenceFee(Tx):
    model: Hash
    amount: Positive
    hosts: Addresses


@register("claim_royalty")
@dataclass(frozen=True)
class ClaimRoyalty(Tx):
    model: Hash
    shares: Positive
    proof: Proof
