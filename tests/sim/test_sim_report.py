import json

import pytest

from deai.sim.report import ReportError, validate_report, write_report


def sample():
    return {
        "scenario": "t",
        "test_accuracy": 0.9,
        "rounds_completed": 2,
        "epsilon": 1.5,
        "rounds": [
            {"round": 1, "accuracy": 0.8, "epsilon": 1.0},
            {"round": 2, "accuracy": 0.9, "epsilon": 1.5},
        ],
        "participants": [
            {
                "address": "0xabc",
                "role": "data_provider",
                "behaviour": "honest",
                "earned": 10,
                "slashed": 0,
                "score": 0.3,
            },
            {
                "address": "0xdef",
                "role": "compute_provider",
                "behaviour": "fake_result",
                "earned": 0,
                "slashed": 50,
                "score": None,
            },
        ],
        "inference": {"requests": 3, "answered": 3, "correct": 3},
        "bytes_sent": 1234,
        "wall_seconds": 1.5,
        "ledger_verified": True,
    }


def test_write_report(tmp_path):
    j, h = write_report(sample(), tmp_path / "out")
    assert json.loads(j.read_text())["test_accuracy"] == 0.9
    page = h.read_text()
    assert page.count("data:image/png;base64,") == 3 and "fake_result" in page


@pytest.mark.parametrize("drop", ["test_accuracy", "ledger_verified", "participants"])
def test_missing_keys_are_refused(drop):
    r = sample()
    del r[drop]
    with pytest.raises(ReportError, match=drop):
        validate_report(r)


def test_missing_participant_key():
    r = sample()
    del r["participants"][0]["score"]
    with pytest.raises(ReportError, match="score"):
        validate_report(r)
