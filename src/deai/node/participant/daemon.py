"""The participant daemon: one process, several accounts, one or more roles, one hub.

``Daemon(client, {role: [accounts]}, state_dir)`` builds each role from the registry
(:data:`~deai.node.participant.roles.ROLES`), runs its one-time setup and then polls: :meth:`Daemon.step` runs
one step of every role and saves the roles' memory (``state_dir/daemon.json``, written atomically) when
something was done; :meth:`Daemon.run` loops until stopped. A restarted daemon reads its memory back and
resumes its roles where it left off (joined tasks, commitments to reveal, claims to make). Errors talking to
the hub (it may be restarting) are logged and retried at the next poll.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

from deai.core.accounts import Account
from deai.core.errors import DeaiError
from deai.net.transport import RemoteError
from deai.node.participant.client import HubClient
from deai.node.participant.roles import ROLES, Role, RoleContext

__all__ = ["Daemon"]

log = logging.getLogger(__name__)


class Daemon:
    def __init__(
        self,
        client: HubClient,
        roles: Mapping[str, Sequence[Account]],
        state_dir: str | Path,
        *,
        data_dir: str | Path | None = None,
        options: Mapping | None = None,
        behaviours: Mapping[str, str] | None = None,
    ) -> None:
        self.client = client
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.state_dir / "daemon.json"
        saved = json.loads(self.path.read_text()) if self.path.exists() else {}
        ctx = RoleContext(
            client,
            self.state_dir,
            data_dir=Path(data_dir) if data_dir is not None else None,
            options=dict(options or {}),
            behaviours=dict(behaviours or {}),
        )
        self.roles: dict[str, Role] = {
            name: ROLES.get(name)(ctx, accounts, saved.get(name))
            for name, accounts in roles.items()
            if accounts
        }
        self._ready = False

    def setup(self) -> None:
        for role in self.roles.values():
            role.setup()
        self._ready = True
        self.save()

    def step(self) -> bool:
        if not self._ready:
            self.setup()
        did = False
        for role in self.roles.values():
            did |= role.step()
        if did:
            self.save()
        return did

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({n: r.memory for n, r in self.roles.items()}))
        os.replace(tmp, self.path)

    def done(self) -> bool:
        return all(r.done() for r in self.roles.values())

    def run(
        self,
        stop: threading.Event,
        *,
        interval: float = 0.1,
        until_done: bool = False,
        long_poll: float | None = None,
    ) -> None:
        """Step until ``stop`` is set (or, with ``until_done``, every role is done).

        After a step with nothing to do the daemon waits: with ``long_poll`` (seconds) it asks the
        hub to answer when its state changes (``hub.wait``; at most ``long_poll`` later, so actions
        due at a time, e.g. after a deadline, still happen), else it sleeps ``interval``. A hub
        without ``hub.wait`` is polled every ``interval``.
        """
        since, boot = -1, None
        while not stop.is_set():
            try:
                did = self.step()
                if until_done and self.done():
                    return
                if not did and long_poll:
                    # since is the version seen before the step: a change during it answers at once
                    since, boot = self._wait(since, boot, long_poll, interval)
                elif not did:
                    stop.wait(interval)
            # The hub may be restarting, or (KeyError, TypeError, ValueError) answer a field of the
            # wrong shape: the hub is another party, so its fault never ends the daemon. Try later.
            except (DeaiError, OSError, httpx.HTTPError, KeyError, TypeError, ValueError) as exc:
                log.warning("daemon step failed: %s: %s", type(exc).__name__, str(exc)[:500])
                stop.wait(min(1.0, interval * 5))

    def _wait(
        self, since: int, boot: str | None, long_poll: float, interval: float
    ) -> tuple[int, str | None]:
        try:
            reply = self.client.call(
                "hub.wait", {"since": since, "boot": boot, "timeout_ms": round(long_poll * 1000)}
            )
        except RemoteError as exc:
            if exc.status != 404:  # 404: an older hub without long polls
                raise
            time.sleep(interval)
            return since, boot
        return reply["version"], reply["boot"]
