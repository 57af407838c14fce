"""Rules for tasks: escrowed budgets, members, round checkpoints, Merkle payouts and claims.

Cancelling (``cancel_task``, the creator only) closes an open task that no member has joined yet and
refunds its whole budget: nobody did work for it or locked a stake in it, so nobody is owed anything.
Once a member joined, only the coordinator closes the task (``close_task``: at its end, or when it
fails), after paying the rounds members trained; a job of the task still open when it closes
refunds its unspent fee to the creator (rules/jobs.py), so no escrow is ever stranded.

Joining needs a role stake of at least the role minimum, and that stake cannot be unstaked until
the member has left every task it joined in that role (``leave_task``, once the task is closed):
a per-(account, role) membership count, O(1).

No rule loops over a task's members: a round's payouts are one ``post_payout_root`` (moving
``total`` from the budget into a payout bucket) plus one ``claim`` per participant with a proof.
"""

from __future__ import annotations

from dataclasses import replace

from deai.ledger.errors import (
    AlreadyMember,
    BadProof,
    BadRound,
    DoubleClaim,
    DuplicateEntity,
    InsufficientEscrow,
    InsufficientStake,
    JobError,
    NotAMember,
    PoolExhausted,
    StakeBelowMinimum,
    TaskClosed,
    TaskHasMembers,
    TaskStillOpen,
    UnknownJob,
    UnknownPayout,
    UnknownTask,
)
from deai.ledger.merkle import leaf_hash, verify_proof
from deai.ledger.records import MemberRecord, PayoutRecord, TaskRecord, TaskStatus
from deai.ledger.rules.base import Call, credit, debit, handles
from deai.ledger.state import State, key
from deai.ledger.txs import (
    CancelTask,
    ClaimPayout,
    CloseTask,
    CreateTask,
    JoinTask,
    LeaveTask,
    PostCheckpoint,
    PostPayoutRoot,
    SlashMember,
)

__all__ = ["get_task"]


def get_task(state: State, task_id: str, *, open_: bool = False) -> TaskRecord:
    task = state.task(task_id)
    if task is None:
        raise UnknownTask(f"no task {task_id}")
    if open_ and not task.open:
        raise TaskClosed(f"task {task_id} is closed")
    return task


def _coordinated(c: Call, task_id: str, what: str) -> TaskRecord:
    task = get_task(c.state, task_id, open_=True)
    c.require_sender(task.coordinator, f"{what} for task {task_id} (its coordinator)")
    return task


@handles(CreateTask)
def create_task(c: Call, tx: CreateTask) -> None:
    if c.state.task(tx.task) is not None:
        raise DuplicateEntity(f"task {tx.task} exists")
    debit(c.state, c.sender, tx.budget, "escrow the task budget")
    coordinator = tx.coordinator or c.sender
    c.state.put_task(
        tx.task,
        TaskRecord(
            creator=c.sender,
            coordinator=coordinator,
            budget=tx.budget,
            params=tx.params,
            provider_stake=tx.provider_stake,
            round=0,
            members=0,
            status=TaskStatus.OPEN,
        ),
    )
    c.emit("task_created", task=tx.task, creator=c.sender, coordinator=coordinator, budget=tx.budget)


@handles(JoinTask)
def join_task(c: Call, tx: JoinTask) -> None:
    task = get_task(c.state, tx.task, open_=True)
    if c.state.member(tx.task, c.sender) is not None:
        raise AlreadyMember(f"{c.sender} already joined task {tx.task}")
    staked, minimum = c.state.num("stakes", key(c.sender, tx.role)), c.config.min_stake[tx.role]
    if staked < minimum or staked == 0:
        raise StakeBelowMinimum(
            f"joining as {tx.role} needs a {tx.role} stake of at least {minimum}, have {staked}"
        )
    debit(c.state, c.sender, task.provider_stake, "lock the task's provider stake")
    c.state.put_member(tx.task, c.sender, MemberRecord(role=tx.role, stake=task.provider_stake))
    # the role stake that entitled it to join stays put while it is a member (see funds.unstake)
    c.state.add("memberships", key(c.sender, tx.role), 1)
    c.state.put_task(tx.task, replace(task, members=task.members + 1))
    c.emit("task_joined", task=tx.task, account=c.sender, role=tx.role, stake=task.provider_stake)


@handles(PostCheckpoint)
def checkpoint(c: Call, tx: PostCheckpoint) -> None:
    task = _coordinated(c, tx.task, "post checkpoints")
    if tx.round != task.round + 1:
        raise BadRound(
            f"task {tx.task} is at round {task.round}; the next checkpoint is round {task.round + 1}"
        )
    c.state.put("checkpoints", key(tx.task, tx.round), tx.checkpoint)
    c.state.put_task(tx.task, replace(task, round=tx.round))
    c.emit("checkpoint", task=tx.task, round=tx.round, checkpoint=tx.checkpoint)


@handles(PostPayoutRoot)
def post_payout_root(c: Call, tx: PostPayoutRoot) -> None:
    task = _coordinated(c, tx.task, "post payouts")
    if c.state.payout(tx.task, tx.epoch) is not None:
        raise DuplicateEntity(f"task {tx.task} already has a payout for epoch {tx.epoch}")
    if tx.total > task.budget:
        raise InsufficientEscrow(f"payout total {tx.total} exceeds the task's remaining budget {task.budget}")
    if tx.job is not None:
        job = c.state.job(tx.job)
        if job is None:
            raise UnknownJob(f"no job {tx.job}")
        if job.task != tx.task or job.status != "accepted" or job.digest != tx.root:
            raise JobError(
                f"job {tx.job} is not an accepted job of this task whose result is the root {tx.root}"
            )
    c.state.put_task(tx.task, replace(task, budget=task.budget - tx.total))
    c.state.put_payout(tx.task, tx.epoch, PayoutRecord(root=tx.root, total=tx.total, claimed=0, job=tx.job))
    c.emit("payout_posted", task=tx.task, epoch=tx.epoch, root=tx.root, total=tx.total, job=tx.job)


@handles(ClaimPayout)
def claim(c: Call, tx: ClaimPayout) -> None:
    payout = c.state.payout(tx.task, tx.epoch)
    if payout is None:
        raise UnknownPayout(f"task {tx.task} has no payout for epoch {tx.epoch}")
    ck = key(tx.task, tx.epoch, c.sender)
    if c.state.num("claims", ck):
        raise DoubleClaim(f"{c.sender} already claimed from task {tx.task} epoch {tx.epoch}")
    if not verify_proof(leaf_hash(c.sender, tx.amount), tx.proof, payout.root):
        raise BadProof(f"the proof for ({c.sender}, {tx.amount}) does not lead to root {payout.root}")
    if payout.claimed + tx.amount > payout.total:
        raise PoolExhausted(f"payout epoch {tx.epoch} has {payout.total - payout.claimed} left")
    c.state.put("claims", ck, tx.amount)
    c.state.put_payout(tx.task, tx.epoch, replace(payout, claimed=payout.claimed + tx.amount))
    credit(c.state, c.sender, tx.amount)
    c.emit("claimed", task=tx.task, epoch=tx.epoch, account=c.sender, amount=tx.amount)


@handles(SlashMember)
def slash_member(c: Call, tx: SlashMember) -> None:
    task = _coordinated(c, tx.task, "slash members")
    member = c.state.member(tx.task, tx.account)
    if member is None:
        raise NotAMember(f"{tx.account} is not a member of task {tx.task}")
    if tx.amount > member.stake:
        raise InsufficientStake(
            f"{tx.account} has {member.stake} locked in the task, cannot slash {tx.amount}"
        )
    c.state.put_member(tx.task, tx.account, replace(member, stake=member.stake - tx.amount))
    c.state.put_task(tx.task, replace(task, budget=task.budget + tx.amount))
    c.emit("member_slashed", task=tx.task, account=tx.account, amount=tx.amount, reason=tx.reason)


@handles(CloseTask)
def close_task(c: Call, tx: CloseTask) -> None:
    task = _coordinated(c, tx.task, "close the task")
    c.state.put_task(tx.task, replace(task, budget=0, status=TaskStatus.CLOSED))
    credit(c.state, task.creator, task.budget)
    c.emit("task_closed", task=tx.task, refund=task.budget, creator=task.creator)


@handles(LeaveTask)
def leave_task(c: Call, tx: LeaveTask) -> None:
    task = get_task(c.state, tx.task)
    if task.open:
        raise TaskStillOpen(f"task {tx.task} is open; members get their task stake back once it is closed")
    member = c.state.member(tx.task, c.sender)
    if member is None:
        raise NotAMember(f"{c.sender} is not a member of task {tx.task}")
    c.state.put_member(tx.task, c.sender, None)
    c.state.add("memberships", key(c.sender, member.role), -1)
    credit(c.state, c.sender, member.stake)
    c.emit("task_left", task=tx.task, account=c.sender, refund=member.stake)


@handles(CancelTask)
def cancel_task(c: Call, tx: CancelTask) -> None:
    task = get_task(c.state, tx.task, open_=True)
    c.require_sender(task.creator, f"cancel task {tx.task} (its creator)")
    if task.members:
        raise TaskHasMembers(
            f"task {tx.task} has {task.members} member(s): only its coordinator closes it now"
        )
    c.state.put_task(tx.task, replace(task, budget=0, status=TaskStatus.CLOSED))
    credit(c.state, task.creator, task.budget)
    c.emit("task_cancelled", task=tx.task, refund=task.budget, creator=task.creator)
