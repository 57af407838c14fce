"""Typed task records: the coordinator's history, status and round view round-trip through the JSON
the hub sends, and a malformed answer is refused by name at the edge."""

from __future__ import annotations

import json

import pytest

from deai.net.transport import RemoteError
from deai.node.participant.client import parse_record
from deai.protocol.task.records import JobSummary, MalformedView, Phase, RoundRecord, RoundView, TaskView

A, B = "0x" + "ab" * 20, "0x" + "cd" * 20

ROUND = {
    "round": 1,
    "checkpoint": "11" * 32,
    "contributors": [A, B],
    "updates": {A: "22" * 32, B: "33" * 32},
    "scores": {A: 0.5, B: -0.1},
    "aggregate_job": "0x" + "44" * 32,
    "score_job": "0x" + "55" * 32,
    "executors": {"aggregate": [A], "score": [B]},
    "faulted": [],
    "payout": 900,
    "allocation": {"budget": 1000, "total": 900, "unallocated": 100, "compute": {A: 10}, "data": {B: 890}},
    "val_accuracy": 0.75,
    "val_loss": 0.6,
    "val_perplexity": None,
    "epsilon": 1.5,
    "time": 1234,
    "scored_on": "44" * 32,
    "defense": "median (f=1 of 3 updates)",
}

STATUS = {
    "task": "0x" + "66" * 32,
    "phase": "jobs",
    "round": 2,
    "rounds": 3,
    "members": 2,
    "delivered": 2,
    "roster": 2,
    "deadline": 99,
    "checkpoint": "11" * 32,
    "history": [ROUND],
    "jobs": {
        "aggregate": {"status": "running", "attempts": 1},
        "score": {"status": "accepted", "attempts": 2},
    },
    "epsilon": 1.5,
    "model": None,
    "reason": None,
    "stale": 0,
    "scores": {"rounds": {"1": {A: 0.5}}},
    "job_ids": ["0x" + "44" * 32],
}

ROUND_VIEW = {
    "task": "0x" + "66" * 32,
    "phase": "train",
    "round": 2,
    "rounds": 3,
    "checkpoint": "11" * 32,
    "deadline": 99,
    "roster": [A, B],
    "submitted": [A],
    "members": [A, B],
}


def test_task_view_round_trips_and_reads_by_attribute():
    view = TaskView.from_json(json.loads(json.dumps(STATUS)))
    assert view.to_json() == STATUS
    assert view.phase is Phase.JOBS and view.history[0].contributors == [A, B]
    assert view.jobs["score"] == JobSummary("accepted", 2) and view.history[0].epsilon == 1.5
    assert RoundRecord.from_json(ROUND).to_json() == ROUND


def test_a_rejected_task_has_only_its_reason():
    wire = {"task": STATUS["task"], "phase": "rejected", "reason": "BadTaskSpec: no"}
    view = TaskView.from_json(wire)
    assert view.phase is Phase.REJECTED and view.reason == "BadTaskSpec: no" and view.history == []
    assert view.to_json() == wire == TaskView.rejected(STATUS["task"], "BadTaskSpec: no").to_json()


def test_round_view_round_trips_with_and_without_secagg():
    assert RoundView.from_json(ROUND_VIEW).to_json() == ROUND_VIEW
    with_sa = {**ROUND_VIEW, "secagg": {"attempt": 1, "phase": "advertise"}}
    view = RoundView.from_json(with_sa)
    assert view.secagg == {"attempt": 1, "phase": "advertise"} and view.to_json() == with_sa


@pytest.mark.parametrize(
    ("cls", "data", "match"),
    [
        (TaskView, {**STATUS, "extra": 1}, r"unknown keys \['extra'\]"),
        (TaskView, {k: v for k, v in STATUS.items() if k != "phase"}, r"missing keys \['phase'\]"),
        (TaskView, {**STATUS, "phase": "sleeping"}, "sleeping"),
        (TaskView, {**STATUS, "history": [{**ROUND, "round": None, "oops": 1}]}, "oops"),
        (TaskView, [1], "is an object"),
        (RoundView, {k: v for k, v in ROUND_VIEW.items() if k != "roster"}, r"missing keys \['roster'\]"),
    ],
)
def test_malformed_views_are_refused_by_name(cls, data, match):
    with pytest.raises(MalformedView, match=match):
        cls.from_json(data)


def test_a_hubs_malformed_record_is_a_malformed_answer():
    assert parse_record("balance", 5) == 5 and parse_record("job", None) is None
    with pytest.raises(RemoteError, match=r"the hub's job record: .*missing keys"):
        parse_record("job", {"creator": A})
    with pytest.raises(RemoteError, match=r"the hub's model record: .*expected an object"):
        parse_record("model", "0x00")
