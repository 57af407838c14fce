"""Conformance: ``cancel_task``, the creator taking back a task nobody joined."""

from __future__ import annotations

import pytest

from deai.core.encoding import hash_value
from deai.ledger import DATA, errors, txs

TASK = hash_value("cancel-me")
PARAMS = hash_value("params")


@pytest.fixture
def created(net):
    creator = net.accounts[1]
    net.fund(creator, 10_000)
    net.send(creator, txs.CreateTask(task=TASK, budget=6_000, params=PARAMS, provider_stake=50))
    return net, creator


def test_the_creator_cancels_a_task_nobody_joined(created):
    net, creator = created
    ledger = net.ledger
    assert ledger.balance(creator.address) == 4_000
    receipt = net.send(creator, txs.CancelTask(task=TASK))
    assert [e.kind for e in receipt.events] == ["task_cancelled"]
    assert receipt.events[0].data == {"task": TASK, "refund": 6_000, "creator": creator.address}
    task = ledger.task(TASK)
    assert not task.open and task.budget == 0
    assert ledger.balance(creator.address) == 10_000 and ledger.supply()["task_escrow"] == 0
    ledger.check_invariants()
    with pytest.raises(errors.TaskClosed):  # once
        net.send(creator, txs.CancelTask(task=TASK))
    with pytest.raises(errors.TaskClosed):  # nobody joins a cancelled task
        net.staked(net.accounts[2], DATA, 100, extra=50)
        net.send(net.accounts[2], txs.JoinTask(task=TASK, role=DATA))


def test_only_the_creator_and_only_before_anyone_joined(created):
    net, creator = created
    other = net.accounts[3]
    net.fund(other, 1_000)
    with pytest.raises(errors.NotAuthorized):
        net.send(other, txs.CancelTask(task=TASK))
    with pytest.raises(errors.UnknownTask):
        net.send(creator, txs.CancelTask(task=hash_value("no such task")))
    member = net.accounts[2]
    net.staked(member, DATA, 100, extra=50)
    net.send(member, txs.JoinTask(task=TASK, role=DATA))
    with pytest.raises(errors.TaskHasMembers):  # a member locked a stake: the coordinator closes it
        net.send(creator, txs.CancelTask(task=TASK))
    assert net.ledger.task(TASK).open and net.ledger.task(TASK).budget == 6_000
    net.ledger.check_invariants()


def test_a_cancel_replays_from_genesis(created):
    net, creator = created
    net.send(creator, txs.CancelTask(task=TASK))
    report = net.ledger.verify()
    assert report.ok, report.problem
