"""Structured logs: one line per event, as text or JSON lines, on stdlib :mod:`logging`.

A line says when, how bad, which part and what happened, then the event's fields::

    2026-11-29T06:12:00.123Z INFO hub task.round task=0x1f.. round=2 accuracy=0.81

or, with ``fmt="json"``, one JSON object per line with the keys ``time``, ``level``,
``component``, ``event`` and the fields. Emit events with :func:`event` (a name and ``key=value``
fields; never a secret, never a request body); plain ``log.info("...")`` calls elsewhere come out
the same way with their message as the event. :func:`configure` installs the handler once per
process (``deai hub`` and ``deai node`` call it from ``--log-level`` / ``--log-format``).

Expected errors are one line: a record that carries an exception prints ``error="Type: text"``,
and the traceback only when the level is ``debug``. Values are cut at :data:`MAX_VALUE`
characters and newlines are escaped, so a foreign string cannot forge a line. :class:`Throttle`
bounds how often one kind of line can be written (an outsider can send refused requests fast).
"""

from __future__ import annotations

import json
import logging
import sys
import time
import traceback
from datetime import UTC, datetime
from typing import IO, Any

__all__ = ["FORMATS", "LEVELS", "MAX_VALUE", "LineFormatter", "Throttle", "configure", "event"]

LEVELS = ("debug", "info", "warning", "error")
FORMATS = ("text", "json")
MAX_VALUE = 200  # characters of one field's value in a line
_FIELDS = "deai_fields"


def event(logger: logging.Logger, name: str, /, level: int = logging.INFO, **fields: Any) -> None:
    """Log the event ``name`` with ``fields`` (JSON-ready values: str, int, float, bool, None)."""
    if logger.isEnabledFor(level):
        logger.log(level, name, extra={_FIELDS: fields})


def _component(name: str) -> str:
    """``deai.node.hub.server`` -> ``hub.server``; ``deai.hub`` -> ``hub``."""
    parts = name.split(".")
    if parts[0] == "deai":
        parts = parts[1:]
    if (
        parts
        and parts[0] in ("node", "net", "core", "protocol", "ledger", "learn", "sim", "cli")
        and len(parts) > 1
    ):
        parts = parts[1:]
    return ".".join(parts) or name


def _clip(value: Any) -> Any:
    if isinstance(value, bool | int | float) or value is None:
        return value
    text = value if isinstance(value, str) else json.dumps(value, default=str, separators=(",", ":"))
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 2] + ".."


def _text_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if not isinstance(value, str):
        return json.dumps(value)
    if value and not any(c in value for c in ' ="\\\n\r\t') and value.isprintable():
        return value
    return json.dumps(value)  # quoted, with newlines and quotes escaped


class LineFormatter(logging.Formatter):
    """Formats records as one line of text (``fmt="text"``) or JSON (``fmt="json"``); a record's
    exception is one ``error`` field, plus its traceback when ``tracebacks`` is set."""

    def __init__(self, fmt: str = "text", *, tracebacks: bool = False) -> None:
        super().__init__()
        if fmt not in FORMATS:
            raise ValueError(f"log format must be one of {FORMATS}, not {fmt!r}")
        self.fmt, self.tracebacks = fmt, tracebacks

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        fields = {k: _clip(v) for k, v in (getattr(record, _FIELDS, None) or {}).items()}
        name = record.getMessage()
        trace = None
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            fields["error"] = _clip(f"{type(exc).__name__}: {exc}")
            if self.tracebacks:
                trace = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        if self.fmt == "json":
            doc = {"time": when, "level": record.levelname, "component": _component(record.name)}
            doc["event"] = name
            doc.update({k: v for k, v in fields.items() if k not in doc})
            if trace is not None:
                doc["traceback"] = trace
            return json.dumps(doc, default=str, separators=(",", ":"))
        head = f"{when} {record.levelname} {_component(record.name)} {name.replace(chr(10), ' | ')}"
        line = " ".join([head, *(f"{k}={_text_value(v)}" for k, v in fields.items())])
        return line if trace is None else line + "\n" + trace


_HANDLER: logging.Handler | None = None


def configure(level: str = "info", fmt: str = "text", stream: IO[str] | None = None) -> None:
    """Send this process's ``deai`` logs (and warnings of the libraries it uses) to ``stream``
    (default stderr), one line per event, from ``level`` up. Calling it again replaces the
    previous settings."""
    global _HANDLER
    if level not in LEVELS:
        raise ValueError(f"log level must be one of {LEVELS}, not {level!r}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(LineFormatter(fmt, tracebacks=level == "debug"))
    root = logging.getLogger()
    if _HANDLER is not None:
        root.removeHandler(_HANDLER)
    root.addHandler(handler)
    _HANDLER = handler
    root.setLevel(logging.WARNING)  # other libraries: their warnings only
    logging.getLogger("deai").setLevel(level.upper())


class Throttle:
    """At most one line per key every ``every_s`` seconds; :meth:`allow` says whether to write
    one now and how many were held back since the last one."""

    def __init__(self, every_s: float = 1.0, max_keys: int = 1024) -> None:
        self.every_s, self.max_keys = every_s, max_keys
        self._last: dict[str, tuple[float, int]] = {}

    def allow(self, key: str) -> tuple[bool, int]:
        now = time.monotonic()
        last, held = self._last.get(key, (-1e18, 0))
        if now - last < self.every_s:
            if key in self._last:
                self._last[key] = (last, held + 1)
            return False, held + 1
        if len(self._last) >= self.max_keys and key not in self._last:
            self._last.clear()  # bounded memory; a flood of distinct keys resets the window
        self._last[key] = (now, 0)
        return True, held
