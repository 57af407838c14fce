"""The participant daemon: one process, several accounts, one or more roles, one hub.

``Daemon(client, {role: [accounts]}, state_dir)`` builds each role from the registry
(:data:`~deai.node.participant.roles.ROLES`), runs its one-time setup and then polls: :meth:`Daemon.step` runs
one step of every role and saves the roles' memory (``state_dir/daemon.json``, written atomically) when
something was done; :meth:`Daemon.run` loops until stopped. A restarted daemon reads its memory back and
resumes its roles where it left off (joined tasks, commitments to reveal, claims to make). Errors talking to
the hub (it may be restarting) are logged and retried at the next poll.

Traffic: :meth:`Daemon.traffic` is what the daemon's transport moved
(:class:`~deai.net.links.Traffic`); :meth:`Daemon.run` writes it with the daemon's roles and accounts
to ``state_dir/traffic.json`` (atomically) at most once a second and when it stops, so a parent
process can read what each daemon sent and received (:func:`read_traffic`). The counters start at
zero with each process: a restarted daemon reports what it moved since it started.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from deai.core.accounts import Account
from deai.core.errors import DeaiError
from deai.net.links import Traffic
from deai.net.transport import RemoteError
from deai.node.participant.client import HubClient
from deai.node.participant.roles import ROLES, Role, RoleContext

__all__ = ["TRAFFIC_FILE", "Daemon", "DaemonTraffic", "read_traffic"]

log = logging.getLogger(__name__)

TRAFFIC_FILE = "traffic.json"
TRAFFIC_EVERY_S = 1.0  # traffic.json is rewritten at most this often while the daemon runs
MAX_TRAFFIC_FILE = 1 << 20  # bytes: a traffic file is a few hundred bytes, bounded when read


@dataclass
class DaemonTraffic:
    """One client's traffic: ``name`` (a daemon's folder name, or a bare client's signer address),
    ``roles`` (role -> accounts hosted; empty for a bare client) and its transport's
    :class:`~deai.net.links.Traffic`."""

    name: str
    roles: dict[str, int]
    traffic: Traffic


def read_traffic(state_dir: str | Path) -> DaemonTraffic | None:
    """A daemon's ``traffic.json`` (None if absent), checked as foreign input: bounded size, role
    names short strings, account counts and every counter bounded integers; else ValueError."""
    path = Path(state_dir) / TRAFFIC_FILE
    if not path.is_file():
        return None
    raw = path.read_bytes()
    if len(raw) > MAX_TRAFFIC_FILE:
        raise ValueError(f"{path} is {len(raw)} bytes, over {MAX_TRAFFIC_FILE}")
    data = json.loads(raw)
    if not isinstance(data, dict) or not isinstance(data.get("roles"), dict) or len(data["roles"]) > 16:
        raise ValueError(f"{path}: roles must be an object of at most 16 roles")
    roles = {}
    for name, count in data["roles"].items():
        if (
            len(name) > 64
            or not isinstance(count, int)
            or isinstance(count, bool)
            or not 0 <= count <= 1 << 20
        ):
            raise ValueError(f"{path}: role {name[:64]!r} has a bad account count")
        roles[name] = count
    return DaemonTraffic(Path(state_dir).name, roles, Traffic.from_json(data.get("traffic")))


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

    def traffic(self) -> Traffic:
        """A snapshot of what this daemon's transport moved (zeros for a transport without counters)."""
        t = getattr(self.client.transport, "traffic", None)
        return Traffic().add(t) if isinstance(t, Traffic) else Traffic()

    def write_traffic(self) -> None:
        """Write :meth:`traffic` with the roles and account counts to ``state_dir/traffic.json``."""
        data = {
            "roles": {n: len(r.accounts) for n, r in self.roles.items()},
            "traffic": self.traffic().to_json(),
        }
        tmp = self.state_dir / (TRAFFIC_FILE + ".tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, self.state_dir / TRAFFIC_FILE)

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
        written = time.monotonic()
        try:
            self._loop(stop, since, boot, interval, until_done, long_poll, written)
        finally:
            self.write_traffic()

    def _loop(
        self,
        stop: threading.Event,
        since: int,
        boot: str | None,
        interval: float,
        until_done: bool,
        long_poll: float | None,
        written: float,
    ) -> None:
        while not stop.is_set():
            if time.monotonic() - written >= TRAFFIC_EVERY_S:
                self.write_traffic()
                written = time.monotonic()
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
