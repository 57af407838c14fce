"""Why the ledger refused a transaction: one exception class per reason.

Every refusal raises a subclass of :class:`LedgerError` whose message names the reason; a refused
transaction changes nothing (not even the sender's nonce) and is not logged. The classes are
grouped by what went wrong: the transaction itself (malformed, badly signed, wrong nonce), the
sender's rights, funds, or the phase of a task, job, payout or model.
"""

from __future__ import annotations

from deai.core.errors import DeaiError

__all__ = [
    "AlreadyMember",
    "BadAcceptance",
    "BadModelId",
    "BadNonce",
    "BadProof",
    "BadRound",
    "BadTxSignature",
    "CommitAfterDeadline",
    "CommitmentMismatch",
    "DoubleClaim",
    "DuplicateCommit",
    "DuplicateEntity",
    "DuplicateReveal",
    "FundsError",
    "InsufficientBalance",
    "InsufficientEscrow",
    "InsufficientStake",
    "InvariantViolation",
    "JobError",
    "JobNotResolvable",
    "LedgerCorrupted",
    "LedgerError",
    "MalformedRecord",
    "MalformedTx",
    "NotAMember",
    "NotAnExecutor",
    "NotAuthorized",
    "NotEnoughExecutors",
    "NothingToClaim",
    "NothingToWithdraw",
    "PoolExhausted",
    "ReplayedNonce",
    "ReplicationMismatch",
    "RevealAfterDeadline",
    "RevealTooEarly",
    "RevealWithoutCommit",
    "StakeBelowMinimum",
    "StakeLocked",
    "StillUnbonding",
    "SupplyCapExceeded",
    "TaskClosed",
    "TaskStillOpen",
    "TxError",
    "TxTooLarge",
    "UnknownEntity",
    "UnknownJob",
    "UnknownModel",
    "UnknownPayout",
    "UnknownTask",
    "UnknownTxKind",
    "WrongNetwork",
    "WrongPhase",
]


class LedgerError(DeaiError):
    """Base class of every ledger refusal and ledger failure."""


# -- the transaction itself ----------------------------------------------------------------------


class TxError(LedgerError):
    """The transaction is unusable whatever the state: bad form, signature, network or nonce."""


class MalformedTx(TxError):
    """A field is missing, unknown, of the wrong type, out of range, or the bytes are not canonical."""


class UnknownTxKind(MalformedTx):
    """The ``kind`` names no registered transaction type."""


class TxTooLarge(MalformedTx):
    """The encoded transaction exceeds the network's size limit."""


class BadTxSignature(TxError):
    """The signature is invalid or was made by another key than ``sender``."""


class WrongNetwork(TxError):
    """The transaction is meant for another network (chain id)."""


class BadNonce(TxError):
    """The nonce is not the sender's next one (nonces run 0, 1, 2, ... per account)."""


class ReplayedNonce(BadNonce):
    """The nonce was already used by an applied transaction of this sender: a replay."""


# -- rights -----------------------------------------------------------------------------------------


class NotAuthorized(LedgerError):
    """The sender may not do this (not the minter, the task coordinator, the job creator, ...)."""


class BadModelId(NotAuthorized):
    """A model id must be ``model_id(sender, task, document)``: nobody registers another's id."""


# -- funds ------------------------------------------------------------------------------------------


class FundsError(LedgerError):
    """Not enough of something."""


class InsufficientBalance(FundsError):
    """The sender's free balance is below the amount."""


class InsufficientStake(FundsError):
    """The stake in that role is below the amount."""


class InsufficientEscrow(FundsError):
    """A task budget or job escrow is below the amount."""


class StakeBelowMinimum(FundsError):
    """The resulting (or required) stake is below the network's minimum for the role."""


class StakeLocked(FundsError):
    """The stake backs unresolved jobs and cannot be unstaked yet."""


class StillUnbonding(FundsError):
    """The unbonding delay has not passed."""


class NothingToWithdraw(FundsError):
    """There is no unbonding amount or task stake to withdraw."""


class NothingToClaim(FundsError):
    """The claim would pay nothing."""


class PoolExhausted(FundsError):
    """A payout or royalty pool holds less than the claim (malformed tree or shares)."""


class SupplyCapExceeded(FundsError):
    """Minting would push the supply past 2**53 - 1 (the canonical-JSON integer range)."""


# -- entities and phases ------------------------------------------------------------------------------


class UnknownEntity(LedgerError):
    """No such task, job, payout or model."""


class UnknownTask(UnknownEntity):
    pass


class UnknownJob(UnknownEntity):
    pass


class UnknownPayout(UnknownEntity):
    pass


class UnknownModel(UnknownEntity):
    pass


class DuplicateEntity(LedgerError):
    """A task, job, payout epoch or model with this id already exists."""


class WrongPhase(LedgerError):
    """The task or job is not in a phase that allows this transaction."""


class TaskClosed(WrongPhase):
    pass


class TaskStillOpen(WrongPhase):
    pass


class TaskHasMembers(WrongPhase):
    """A task that members joined cannot be cancelled by its creator (only closed by its coordinator)."""


class AlreadyMember(WrongPhase):
    pass


class NotAMember(WrongPhase):
    pass


class BadRound(WrongPhase):
    """Checkpoints must be posted for rounds 1, 2, 3, ... in order."""


class JobError(WrongPhase):
    """A job transaction in the wrong phase or by the wrong party."""


class NotAnExecutor(JobError):
    """The sender was not drawn as an executor of this job."""


class NotEnoughExecutors(JobError):
    """Fewer eligible staked providers than the executors asked for."""


class DuplicateCommit(JobError):
    pass


class CommitAfterDeadline(JobError):
    pass


class RevealWithoutCommit(JobError):
    pass


class RevealTooEarly(JobError):
    """Reveals open when every executor has committed or the commit deadline has passed."""


class RevealAfterDeadline(JobError):
    pass


class DuplicateReveal(JobError):
    pass


class CommitmentMismatch(JobError):
    """The revealed digest and salt do not hash to the commitment."""


class ReplicationMismatch(JobError):
    """The revealed replication choice and salt do not hash to the creator's commitment."""


class JobNotResolvable(JobError):
    """The job cannot be resolved yet (or any more)."""


class BadAcceptance(JobError):
    """An accepted-executor list that is not a quorum of revealed, required executors."""


class BadProof(LedgerError):
    """A Merkle proof does not lead to the posted root."""


class DoubleClaim(LedgerError):
    """This account already claimed from this payout."""


# -- ledger integrity (not refusals) ---------------------------------------------------------------


class InvariantViolation(LedgerError):
    """A state invariant (conservation, non-negativity) does not hold: a bug, never a refusal."""


class LedgerCorrupted(LedgerError):
    """Stored log or state does not match what replaying the log gives."""


class MalformedRecord(LedgerCorrupted):
    """A stored state row (or a hub's answer to a query) is not the record it should be: a key
    missing or unknown, or a value of the wrong type (:mod:`deai.ledger.records`)."""
