"""Structured logs (deai.core.logs): one line per event, JSON lines, tracebacks only at debug,
foreign text cannot forge a line, and refusals are throttled."""

import io
import json
import logging

import pytest

from deai.core.logs import MAX_VALUE, LineFormatter, Throttle, configure, event

log = logging.getLogger("deai.hub")


@pytest.fixture
def capture():
    buf = io.StringIO()

    def lines():
        return [x for x in buf.getvalue().splitlines() if x]

    root, deai = logging.getLogger(), logging.getLogger("deai")
    saved = root.level, list(root.handlers), deai.level
    yield buf, lines
    for h in root.handlers[:]:  # as it was: the other tests' logging is left alone
        if h not in saved[1]:
            root.removeHandler(h)
    root.setLevel(saved[0])
    deai.setLevel(saved[2])


def test_text_line_has_time_level_component_event_and_fields(capture):
    buf, lines = capture
    configure("info", "text", buf)
    event(log, "slashed", logging.WARNING, account="0xab", amount=5, reason="wrong result")
    event(log, "hidden", logging.DEBUG, x=1)  # below the level: nothing
    (line,) = lines()
    when, level, component, name, *fields = line.split(" ", 4)
    assert when.endswith("Z") and level == "WARNING" and component == "hub" and name == "slashed"
    assert fields == ['account=0xab amount=5 reason="wrong result"']


def test_json_lines(capture):
    buf, lines = capture
    configure("debug", "json", buf)
    event(log, "task.round", task="0x1", round=2, accuracy=0.8125, faulted=["a", "b"])
    doc = json.loads(lines()[0])
    assert doc["event"] == "task.round" and doc["component"] == "hub" and doc["level"] == "INFO"
    assert doc["round"] == 2 and doc["accuracy"] == 0.8125 and doc["faulted"] == '["a","b"]'


@pytest.mark.parametrize("level", ["info", "debug"])
def test_an_error_is_one_line_unless_debug(capture, level):
    buf, lines = capture
    configure(level, "text", buf)
    try:
        raise ValueError("bad input")
    except ValueError:
        logging.getLogger("deai.node").exception("daemon step failed")
    out = lines()
    assert 'error="ValueError: bad input"' in out[0]
    assert (len(out) > 1 and out[1].startswith("Traceback")) == (level == "debug")


def test_foreign_text_cannot_forge_a_line():
    rec = logging.LogRecord("deai.hub", logging.INFO, "", 0, "refused", None, None)
    rec.deai_fields = {"reason": "x\n2026-01-01T00:00:00Z INFO hub minted to=me", "long": "y" * 1000}
    for fmt in ("text", "json"):
        line = LineFormatter(fmt).format(rec)
        assert "\n" not in line
    text = LineFormatter("text").format(rec)
    assert f"long={'y' * (MAX_VALUE - 2)}.." in text


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="log level"):
        configure("loud")
    with pytest.raises(ValueError, match="log format"):
        configure("info", "xml")


def test_throttle_counts_what_it_held_back():
    t = Throttle(every_s=3600)
    assert t.allow("BadSignature") == (True, 0)
    assert t.allow("BadSignature")[0] is False
    assert t.allow("BadSignature") == (False, 2)
    assert t.allow("Other") == (True, 0)
