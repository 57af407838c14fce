"""Novelty flags in the score book and the report's "why"."""

from __future__ import annotations

import pytest

from deai.learn.scoring import Flag
from deai.protocol.incentives import ScoreBook, task_report
from deai.protocol.incentives.errors import BadScores
from deai.protocol.incentives.report import task_record


def test_flags_roundtrip_and_the_report_names_them(world):
    w = world
    task = w.task("flags-task", budget=10_000)
    a = [x.address for x in w.data]
    book = ScoreBook(method="gtg_shapley")
    book.add(1, a, [0.5, 0.4, 0.0, 0.0, 0.0, 0.0], flags=[0, 0, Flag.ZERO, Flag.PUBLIC, 0, 0])
    book.add(
        2,
        a,
        [0.5, 0.3, 0.0, 0.0, 0.0, 0.0],
        duplicate_of=[-1, -1, -1, -1, 0, -1],
        flags=[0, 0, Flag.ZERO, Flag.CONSENSUS, Flag.COPY, Flag.REPLAY],
        replay_of=[None, None, None, None, None, (1, a[1])],
    )
    again = ScoreBook.from_json(book.to_json())
    assert again.to_json() == book.to_json()
    assert again.flags[2] == {a[2]: "ZERO", a[3]: "CONSENSUS", a[4]: "COPY", a[5]: "REPLAY"}
    report = task_report(w.ledger, task, task_record(task, again, None))
    why = {r["account"]: r["why"] for r in report["accounts"]}
    assert "zero update (rounds 1, 2)" in why[a[2]]
    assert "trained on public data only (round 1)" in why[a[3]]
    assert "consensus copy (ALIE-like) (round 2)" in why[a[3]]
    assert f"copy of {a[0][:10]}.. (committed first)" in why[a[4]]
    assert f"replay of round 1's update of {a[1][:10]}.." in why[a[5]]
    assert "score" in why[a[0]] and "copy" not in why[a[0]]


def test_malformed_flags_are_refused(world):
    a = [x.address for x in world.data[:3]]
    book = ScoreBook()
    with pytest.raises(BadScores):
        book.add(1, a, [0.1, 0.2, 0.3], flags=[0, 0])
    with pytest.raises(BadScores):
        book.add(1, a, [0.1, 0.2, 0.3], flags=[0, 0, 99])
    with pytest.raises(BadScores):
        book.add(1, a, [0.1, 0.2, 0.3], replay_of=[None, (1, a[0]), None])  # not an earlier round
    book.add(1, a, [0.1, 0.2, 0.3])  # flags stay optional
    assert book.flags[1] == {}
