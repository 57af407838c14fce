"""Typed ledger records: exact round trips of the stored rows, strict refusals, typed state reads."""

from __future__ import annotations

import pytest

from deai.core.encoding import canonical, hash_value
from deai.ledger import COMPUTE, DATA, errors, txs
from deai.ledger.records import (
    JobRecord,
    JobStatus,
    MemberRecord,
    ModelRecord,
    PayoutRecord,
    TaskRecord,
    TaskStatus,
    UnbondingRecord,
)

A, B = "0x" + "ab" * 20, "0x" + "cd" * 20
H = hash_value("h")

ROWS = {
    TaskRecord: {
        "creator": A,
        "coordinator": B,
        "budget": 10,
        "params": H,
        "provider_stake": 0,
        "round": 2,
        "members": 3,
        "status": "open",
    },
    MemberRecord: {"role": DATA, "stake": 50},
    UnbondingRecord: {"amount": 5, "release": 1_000},
    PayoutRecord: {"root": H, "total": 9, "claimed": 0, "job": None},
    JobRecord: {
        "creator": A,
        "task": None,
        "job_type": "aggregate",
        "inputs": [H],
        "fee": 10,
        "escrow": 30,
        "role": COMPUTE,
        "executors": [A, B],
        "seed": H,
        "replication": H,
        "commit_deadline": 5,
        "reveal_deadline": 9,
        "resolver": B,
        "quorum": 0,
        "model": None,
        "commits": 2,
        "reveals": 1,
        "replicated": True,
        "primary": 0,
        "status": "no_majority",
        "digest": None,
        "accepted": [],
        "faulted": [B],
        "missed": [],
    },
    ModelRecord: {
        "owner": A,
        "task": H,
        "provenance": H,
        "document": H,
        "total_shares": 7,
        "host_bps": 4_000,
        "index": 1,
        "carry": 2,
        "pool": 3,
    },
}


@pytest.mark.parametrize("cls", list(ROWS), ids=lambda c: c.__name__)
def test_round_trip_is_exact(cls):
    row = ROWS[cls]
    record = cls.from_json(row)
    assert record.to_json() == row
    assert canonical(record.to_json()) == canonical(row)


def test_fields_are_typed():
    job = JobRecord.from_json(ROWS[JobRecord])
    assert job.status is JobStatus.NO_MAJORITY and not job.open
    assert job.executors == (A, B) and job.faulted == (B,) and job.replicated is True
    task = TaskRecord.from_json(ROWS[TaskRecord])
    assert task.status is TaskStatus.OPEN and task.open and task.round == 2


@pytest.mark.parametrize(
    ("cls", "change", "match"),
    [
        (MemberRecord, {"extra": 1}, "unknown keys"),
        (UnbondingRecord, {"release": None}, "release is a NoneType"),
        (PayoutRecord, {"total": True}, "total is a bool"),
        (PayoutRecord, {"job": 5}, "job is a int"),
        (TaskRecord, {"status": "paused"}, "status 'paused' is not one of"),
        (JobRecord, {"executors": [A, 5]}, "executors is not a list of strings"),
        (JobRecord, {"executors": A}, "executors is not a list of strings"),
        (JobRecord, {"replicated": 1}, "replicated is a int"),
        (ModelRecord, {"pool": 1.5}, "pool is a float"),
    ],
)
def test_malformed_rows_are_refused_by_name(cls, change, match):
    with pytest.raises(errors.MalformedRecord, match=match):
        cls.from_json({**ROWS[cls], **change})


def test_missing_keys_and_non_objects_are_refused():
    row = dict(ROWS[JobRecord])
    del row["missed"]
    with pytest.raises(errors.MalformedRecord, match=r"missing keys \['missed'\]"):
        JobRecord.from_json(row)
    with pytest.raises(errors.MalformedRecord, match="expected an object"):
        TaskRecord.from_json([1, 2])


def test_state_reads_records_and_names_a_corrupt_row(net):
    creator = net.accounts[1]
    net.fund(creator, 1_000)
    task = hash_value("task")
    net.send(creator, txs.CreateTask(task=task, budget=400, params=task))
    record = net.ledger.task(task)
    assert isinstance(record, TaskRecord) and record.budget == 400 and record.creator == creator.address
    assert net.ledger.job(task) is None and net.ledger.model(task) is None
    state = net.ledger.state()
    assert state.task(task) == record
    state.tables["tasks"][task] = {**record.to_json(), "budget": "400"}
    with pytest.raises(errors.MalformedRecord, match=rf"tasks\[{task}\]: a TaskRecord: budget is a str"):
        state.task(task)
    with pytest.raises(errors.LedgerCorrupted):
        state.check_invariants()
