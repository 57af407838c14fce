"""The hub's activity log: what the network did, one line per event (:mod:`deai.core.logs`).

:class:`Activity` is stepped by the hub's loop after each tick (``deai hub``:
:func:`deai.node.launch.serve.serve_hub`). It follows the ledger's events from where the hub's
cursor stood at start (a restart does not repeat history) and writes each as a line named after
its kind -- stakes, tasks created and joined, jobs registered and resolved, **slashes with their
reason**, payouts posted and claimed, inference paid -- and every task's phase and round changes
(with the round's validation accuracy and loss). Lists in events are shortened to their length
past a few items; no request body is ever logged. The envelopes themselves (accepted and refused
types) are logged by :class:`~deai.net.endpoint.Endpoint`.
"""

from __future__ import annotations

import logging
from typing import Any

from deai.core.logs import event
from deai.node.hub.server import Hub

__all__ = ["Activity"]

log = logging.getLogger("deai.hub")
MAX_EVENTS = 1000  # ledger events read per step (the rest next step)
_WARN = ("slashed", "member_slashed")


def _fields(data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in data.items():
        if isinstance(v, list | tuple) and len(v) > 4:
            out[k] = f"{len(v)} items"
        elif isinstance(v, dict):
            out[k] = f"{len(v)} entries"
        else:
            out[k] = v
    return out


class Activity:
    """Logs the ledger events and task changes of ``hub`` as they happen."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.cursor = hub.cursor
        self.seen: dict[str, tuple[str, int, int]] = {}  # task -> (phase, round, rounds recorded)

    def step(self) -> None:
        """Log what happened since the last step (never raises: a log must not stop the hub)."""
        try:
            self._ledger()
            self._tasks()
        except Exception as exc:  # logged as one line, the hub goes on
            log.warning("activity log failed", exc_info=exc)

    def _ledger(self) -> None:
        events = self.hub.ledger.events(self.cursor, MAX_EVENTS)
        for e in events:
            level = logging.WARNING if e.kind in _WARN else logging.INFO
            event(log, e.kind, level, seq=e.seq, height=e.height, **_fields(e.data))
        if events:
            self.cursor = events[-1].seq + 1

    def _tasks(self) -> None:
        changed = []
        with self.hub.lock:  # only what changed is copied out (a tick runs every few ms)
            for task, c in self.hub.coordinators.items():
                now = (c.state.phase.value, c.state.round, len(c.state.rounds))
                before = self.seen.get(task)
                if before != now:
                    done = before[2] if before else 0
                    changed.append((task, before, now, list(c.state.rounds[done:])))
                    self.seen[task] = now
        for task, before, (phase, rnd, _), new_rounds in changed:
            if before is None or before[:2] != (phase, rnd):
                event(log, "task.phase", task=task, phase=phase, round=rnd)
            for r in new_rounds:
                event(
                    log,
                    "task.round",
                    task=task,
                    round=r.round,
                    accuracy=r.val_accuracy,
                    loss=r.val_loss,
                    contributors=len(r.contributors),
                    faulted=len(r.faulted),
                    payout=r.payout,
                )
