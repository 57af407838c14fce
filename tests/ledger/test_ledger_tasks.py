"""Conformance: tasks, escrow, checkpoints, Merkle payouts and claims."""

from __future__ import annotations

import pytest

from deai.core.encoding import hash_value
from deai.ledger import COMPUTE, DATA, errors, payout_tree, txs

TASK = hash_value("task-1")
PARAMS = hash_value("params")


@pytest.fixture
def task_net(net):
    creator = net.accounts[1]
    net.fund(creator, 100_000)
    net.send(creator, txs.CreateTask(task=TASK, budget=60_000, params=PARAMS, provider_stake=50))
    for p in net.accounts[2:6]:
        net.staked(p, DATA, 100, extra=50)
        net.send(p, txs.JoinTask(task=TASK, role=DATA))
    return net


def test_create_join_and_escrow(task_net):
    ledger, creator = task_net.ledger, task_net.accounts[1]
    task = ledger.task(TASK)
    assert task.budget == 60_000 and task.members == 4 and task.coordinator == creator.address
    assert ledger.balance(creator.address) == 40_000
    assert ledger.member(TASK, task_net.accounts[2].address).to_json() == {"role": DATA, "stake": 50}
    assert ledger.supply()["task_escrow"] == 60_000 and ledger.supply()["task_stakes"] == 200
    with pytest.raises(errors.DuplicateEntity):
        task_net.send(creator, txs.CreateTask(task=TASK, budget=1, params=PARAMS))
    with pytest.raises(errors.AlreadyMember):
        task_net.send(task_net.accounts[2], txs.JoinTask(task=TASK, role=DATA))
    with pytest.raises(errors.StakeBelowMinimum):  # no compute stake
        task_net.send(task_net.accounts[7], txs.JoinTask(task=TASK, role=COMPUTE))
    with pytest.raises(errors.UnknownTask):
        task_net.send(task_net.accounts[2], txs.JoinTask(task=hash_value("nope"), role=DATA))
    with pytest.raises(errors.InsufficientBalance):
        task_net.send(creator, txs.CreateTask(task=hash_value("t2"), budget=40_001, params=PARAMS))
    ledger.check_invariants()


def test_checkpoints_in_order_by_coordinator(task_net):
    creator, other = task_net.accounts[1], task_net.accounts[2]
    with pytest.raises(errors.NotAuthorized):
        task_net.send(other, txs.PostCheckpoint(task=TASK, round=1, checkpoint=hash_value("c1")))
    with pytest.raises(errors.BadRound):
        task_net.send(creator, txs.PostCheckpoint(task=TASK, round=2, checkpoint=hash_value("c2")))
    for r in (1, 2):
        task_net.send(creator, txs.PostCheckpoint(task=TASK, round=r, checkpoint=hash_value(f"c{r}")))
    assert task_net.ledger.checkpoint(TASK, 2) == hash_value("c2") and task_net.ledger.task(TASK).round == 2
    with pytest.raises(errors.BadRound):
        task_net.send(creator, txs.PostCheckpoint(task=TASK, round=2, checkpoint=hash_value("x")))


def test_payout_root_and_claims(task_net):
    ledger, creator = task_net.ledger, task_net.accounts[1]
    members = task_net.accounts[2:6]
    allocation = {m.address: 1_000 * (i + 1) for i, m in enumerate(members)}
    tree = payout_tree(allocation)
    assert tree.total == 10_000
    with pytest.raises(errors.InsufficientEscrow):
        task_net.send(creator, txs.PostPayoutRoot(task=TASK, epoch=1, root=tree.root, total=60_001))
    with pytest.raises(errors.NotAuthorized):
        task_net.send(members[0], txs.PostPayoutRoot(task=TASK, epoch=1, root=tree.root, total=10_000))
    task_net.send(creator, txs.PostPayoutRoot(task=TASK, epoch=1, root=tree.root, total=tree.total))
    assert ledger.task(TASK).budget == 50_000 and ledger.supply()["unclaimed_payouts"] == 10_000
    with pytest.raises(errors.DuplicateEntity):
        task_net.send(creator, txs.PostPayoutRoot(task=TASK, epoch=1, root=tree.root, total=1))
    m0, m1 = members[0], members[1]
    before = ledger.balance(m0.address)
    task_net.send(m0, txs.ClaimPayout(task=TASK, epoch=1, amount=1_000, proof=tuple(tree.proof(m0.address))))
    assert ledger.balance(m0.address) == before + 1_000 and ledger.claimed(TASK, 1, m0.address) == 1_000
    with pytest.raises(errors.DoubleClaim):
        task_net.send(
            m0, txs.ClaimPayout(task=TASK, epoch=1, amount=1_000, proof=tuple(tree.proof(m0.address)))
        )
    # claiming more than the leaf, or with someone else's proof, fails the proof
    with pytest.raises(errors.BadProof):
        task_net.send(
            m1, txs.ClaimPayout(task=TASK, epoch=1, amount=2_001, proof=tuple(tree.proof(m1.address)))
        )
    with pytest.raises(errors.BadProof):
        task_net.send(
            m1, txs.ClaimPayout(task=TASK, epoch=1, amount=1_000, proof=tuple(tree.proof(m0.address)))
        )
    with pytest.raises(errors.UnknownPayout):
        task_net.send(
            m1, txs.ClaimPayout(task=TASK, epoch=2, amount=2_000, proof=tuple(tree.proof(m1.address)))
        )
    outsider = task_net.accounts[9]
    with pytest.raises(errors.BadProof):
        task_net.send(outsider, txs.ClaimPayout(task=TASK, epoch=1, amount=1_000, proof=()))
    for m in members[1:]:
        task_net.send(
            m,
            txs.ClaimPayout(
                task=TASK, epoch=1, amount=allocation[m.address], proof=tuple(tree.proof(m.address))
            ),
        )
    payout = ledger.payout(TASK, 1).to_json()
    assert payout == {"root": tree.root, "total": 10_000, "claimed": 10_000, "job": None}
    assert ledger.supply()["unclaimed_payouts"] == 0
    ledger.check_invariants()


def test_slash_member_close_and_leave(task_net):
    ledger, creator = task_net.ledger, task_net.accounts[1]
    m0, m1 = task_net.accounts[2], task_net.accounts[3]
    with pytest.raises(errors.InsufficientStake):
        task_net.send(creator, txs.SlashMember(task=TASK, account=m0.address, amount=51))
    task_net.send(creator, txs.SlashMember(task=TASK, account=m0.address, amount=30, reason="noise"))
    assert ledger.member(TASK, m0.address).stake == 20 and ledger.task(TASK).budget == 60_030
    with pytest.raises(errors.TaskStillOpen):
        task_net.send(m1, txs.LeaveTask(task=TASK))
    before = ledger.balance(creator.address)
    task_net.send(creator, txs.CloseTask(task=TASK))
    assert ledger.balance(creator.address) == before + 60_030 and ledger.task(TASK).status == "closed"
    with pytest.raises(errors.TaskClosed):
        task_net.send(creator, txs.PostCheckpoint(task=TASK, round=1, checkpoint=hash_value("c")))
    with pytest.raises(errors.TaskClosed):
        task_net.send(task_net.accounts[7], txs.JoinTask(task=TASK, role=DATA))
    before = ledger.balance(m1.address)
    task_net.send(m1, txs.LeaveTask(task=TASK))
    assert ledger.balance(m1.address) == before + 50 and ledger.member(TASK, m1.address) is None
    with pytest.raises(errors.NotAMember):
        task_net.send(m1, txs.LeaveTask(task=TASK))
    assert ledger.check_invariants()["task_stakes"] == 20 + 50 + 50
