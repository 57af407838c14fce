"""A whole network in one process: the in-memory path for tests and large simulations.

:class:`LocalNetwork` runs a :class:`~deai.node.hub.server.Hub` over a
:class:`~deai.ledger.memory.MemoryLedger` driven by a :class:`~deai.ledger.base.ManualClock`, and participant
:class:`~deai.node.participant.daemon.Daemon` objects that reach it through
:class:`~deai.net.memory.MemoryTransport` -- the same handlers, envelope checks, roles and protocol code as
real processes over HTTP, without sockets or sleeps.

:meth:`LocalNetwork.run` alternates hub ticks and daemon steps; when nobody has anything to do it
advances the clock to the next deadline (so a dead participant costs no wall time). Many providers
are cheap: one daemon hosting all of them trains them in one vectorized call and submits their
transactions and statements in batches.

Every client's :class:`~deai.net.memory.MemoryTransport` counts its bytes; :meth:`LocalNetwork.traffic`
lists them per daemon (and per bare client, e.g. a task's creator). Given a ``link``, every client's
transport also adds up the seconds its requests would take over that link.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from deai.core.accounts import Account
from deai.core.blobs import BlobStore
from deai.ledger.base import Ledger, ManualClock
from deai.ledger.config import NetworkConfig
from deai.ledger.memory import MemoryLedger
from deai.ledger.txs import Mint
from deai.net.links import Link, Traffic
from deai.net.memory import MemoryTransport
from deai.node.hub.server import Hub
from deai.node.participant.client import HubClient
from deai.node.participant.daemon import Daemon, DaemonTraffic
from deai.node.participant.host import HostRole
from deai.node.user.submit import TaskBundle, submit_task
from deai.protocol.task.records import TaskView

__all__ = ["LocalNetwork"]


class LocalNetwork:
    def __init__(
        self,
        root: str | Path,
        *,
        network: str = "deai-sim",
        seed: int = 0,
        start_ms: int = 1_000_000,
        config: Mapping | None = None,
        link: Link | None = None,
        ledger: str = "memory",
    ) -> None:
        self.root = Path(root)
        self.link = link
        self.clock = ManualClock(start_ms)
        self.minter = Account.from_seed(f"{network}:{seed}:minter", 0)
        self.hub_account = Account.from_seed(f"{network}:{seed}:hub", 0)
        # the hub resolves the inference jobs users create, so the genesis lists it as a resolver
        cfg = {"resolve_grace_ms": 60_000, "resolvers": (self.hub_account.address,), **dict(config or {})}
        genesis = NetworkConfig(minter=self.minter.address, network=network, **cfg)
        self.ledger: Ledger
        if ledger == "memory":
            self.ledger = MemoryLedger(genesis, clock=self.clock)
        elif ledger == "evm":  # the contracts on an in-process py-evm chain, its blocks timed by the clock
            from deai.ledger.evm.backend import EvmLedger
            from deai.ledger.evm.node import tester_chain

            self.ledger = EvmLedger(tester_chain(), genesis, clock=self.clock)
        else:
            raise ValueError(f"unknown ledger {ledger!r}: memory or evm")
        self.store = BlobStore(self.root / "hub", fsync=False)
        self.hub = Hub(self.ledger, self.store, self.hub_account, clock=self.clock)
        self.daemons: list[Daemon] = []
        # wall seconds each daemon (by name) spent in its steps: its local compute and protocol work
        self.busy: dict[str, float] = {}
        self.transports: list[MemoryTransport] = []
        self.signers: list[str] = []  # the address each transport's client was made for

    @property
    def network(self) -> str:
        return self.ledger.config.network

    def client(self, signer: Account) -> HubClient:
        transport = MemoryTransport(self.hub.endpoint, self.link)
        self.transports.append(transport)
        self.signers.append(signer.address)
        return HubClient(transport, self.network, signer)

    def fund(self, accounts: Sequence[Account | str], amount: int) -> None:
        """Mint ``amount`` to each account (one batched ledger write)."""
        nonce = self.ledger.nonce(self.minter.address)
        txs = []
        for i, a in enumerate(accounts):
            address = a if isinstance(a, str) else a.address
            txs.append(self.ledger.sign(self.minter, Mint(to=address, amount=amount), nonce=nonce + i))
        for r in self.ledger.submit_many(txs):
            if isinstance(r, Exception):
                raise r

    def add_daemon(
        self,
        name: str,
        roles: Mapping[str, Sequence[Account]],
        *,
        behaviours: Mapping[str, str] | None = None,
        options: Mapping | None = None,
    ) -> Daemon:
        signer = next(iter(a for accts in roles.values() for a in accts))
        daemon = Daemon(self.client(signer), roles, self.root / name, behaviours=behaviours, options=options)
        daemon.setup()
        self.daemons.append(daemon)
        return daemon

    def submit(self, creator: Account, bundle: TaskBundle) -> str:
        return submit_task(self.client(creator), creator, bundle, coordinator=self.hub_account.address)

    def status(self, task: str) -> TaskView:
        """The task's status as its coordinator holds it (what ``task.status`` sends as JSON)."""
        return self.hub.coordinators[task].status()

    def run(
        self, until: Callable[[], bool], *, max_steps: int = 100_000, on_step: Callable | None = None
    ) -> int:
        """Drive hub and daemons until ``until()``; returns the steps taken."""
        for steps in range(max_steps):
            if until():
                return steps
            self.step()
            if on_step is not None:
                on_step()
        raise TimeoutError(f"the network did not finish within {max_steps} steps")

    def step(self) -> bool:
        """One hub tick and one step of every daemon; when nobody did anything, the clock moves to
        the next deadline (or 1 s on). True if something was done."""
        did = self.hub.tick()
        for d in self.daemons:
            t0 = time.perf_counter()
            did |= d.step()
            name = d.state_dir.name
            self.busy[name] = self.busy.get(name, 0.0) + time.perf_counter() - t0
        if not did:
            deadline = self.hub.next_deadline()
            if deadline is None or deadline <= self.clock.now:
                self.clock.advance(1_000)
            else:
                self.clock.now = deadline
        return did

    def wait_ready(self, model_id: str, names: Sequence[str] | None = None, max_steps: int = 10_000) -> int:
        """Step the network until every daemon with the host role (``names``: their names as
        given to :meth:`add_daemon`; default all) is ready to serve ``model_id``
        (:meth:`~deai.node.participant.host.HostRole.ready_models`); returns the steps taken."""
        hosts = [
            h
            for d in self.daemons
            if isinstance(h := d.roles.get("host"), HostRole) and (names is None or d.state_dir.name in names)
        ]
        return self.run(lambda: all(model_id in h.ready_models() for h in hosts), max_steps=max_steps)

    def task_done(self, task: str) -> Callable[[], bool]:
        def check() -> bool:
            coord = self.hub.coordinators.get(task)
            finished = coord is not None and coord.done
            return finished and all(d.done() for d in self.daemons)

        return check

    @property
    def bytes_sent(self) -> int:
        return sum(t.bytes_sent for t in self.transports)

    def traffic(self) -> list[DaemonTraffic]:
        """What every client moved so far: one entry per daemon (its name and roles), then one per
        client made outside a daemon (named by its signer's address, no roles)."""
        own = {id(d.client.transport) for d in self.daemons}
        out = [
            DaemonTraffic(d.state_dir.name, {n: len(r.accounts) for n, r in d.roles.items()}, d.traffic())
            for d in self.daemons
        ]
        for signer, t in zip(self.signers, self.transports, strict=True):
            if id(t) not in own:
                out.append(DaemonTraffic(signer, {}, Traffic().add(t.traffic)))
        return out
