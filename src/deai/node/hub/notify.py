"""Change notification for the hub: a version counter that participants can long-poll.

Every change of the hub's state (a ledger write, an accepted statement, a coordinator step) calls
:meth:`Changes.bump`. Two things wait on it:

- the hub's own tick loop (:meth:`Changes.wait_tick`): a handler that changed something wakes it at
  once, so the coordinators act on a new statement or transaction without waiting for the next
  periodic tick;
- participant daemons, through the ``hub.wait`` message (:meth:`Changes.wait`): a daemon with
  nothing to do asks "wake me when the version passes ``since``" instead of polling at a fixed
  interval, so it acts as soon as there is something for it and sends no requests meanwhile.

Waiting is bounded: at most :data:`MAX_WAIT_MS` per call, and at most ``max_waiters`` requests
waiting at once (a server thread each); past that a wait answers at once and the daemon falls back
to polling. The version says only *that* something changed, never what: a daemon still asks the
hub (with signed requests) what concerns it.
"""

from __future__ import annotations

import secrets
import threading
from typing import Any, TypeGuard

from deai.net.endpoint import ServiceError

__all__ = ["MAX_WAIT_MS", "Changes"]

MAX_WAIT_MS = 5_000


class Changes:
    def __init__(self, *, max_waiters: int = 16) -> None:
        self.version = 0
        self.boot = secrets.token_hex(8)  # this run of the hub: versions restart with it
        self.max_waiters = max_waiters
        self._cond = threading.Condition()
        self._tick = threading.Event()
        self._waiters = 0

    def bump(self) -> None:
        """Something changed: wake the tick loop and every long poll."""
        with self._cond:
            self.version += 1
            self._cond.notify_all()
        self._tick.set()

    def wait(self, since: int, timeout_s: float) -> int:
        """Block until the version is past ``since`` or ``timeout_s`` passed; return the version."""
        with self._cond:
            if self.version > since or self._waiters >= self.max_waiters or timeout_s <= 0:
                return self.version
            self._waiters += 1
            try:
                self._cond.wait_for(lambda: self.version > since, timeout=timeout_s)
            finally:
                self._waiters -= 1
            return self.version

    def serve(self, body: dict[str, Any]) -> dict[str, Any]:
        """The ``hub.wait`` handler: ``{"since", "boot", "timeout_ms"}`` -> ``{"version", "boot"}``
        once the version passed ``since`` of this ``boot``, or after ``timeout_ms`` (at most
        :data:`MAX_WAIT_MS`). Another boot (a restarted hub, or a first call) is answered at once."""
        since, boot, timeout = body.get("since"), body.get("boot"), body.get("timeout_ms")
        if not (_is_int(since) and _is_int(timeout)):
            raise ServiceError("since and timeout_ms must be integers")
        if not 0 <= timeout <= MAX_WAIT_MS:
            raise ServiceError(f"timeout_ms must be between 0 and {MAX_WAIT_MS}")
        wait_s = timeout / 1000 if boot == self.boot else 0.0
        return {"version": self.wait(since, wait_s), "boot": self.boot}

    def wait_tick(self, timeout_s: float) -> None:
        """The hub's tick loop: sleep until a change or ``timeout_s``."""
        self._tick.wait(timeout_s)
        self._tick.clear()


def _is_int(v: object) -> TypeGuard[int]:
    return isinstance(v, int) and not isinstance(v, bool)
