"""A network of real processes on loopback: one hub and participant daemons, started and stopped.

Used by ``deai up`` and the integration and fault tests. Accounts are deterministic development
keys (``seed:NAME:I``) so the parent and the children agree on them without sharing key files; the
parent holds the minter and funds everyone. :meth:`ProcessNetwork.kill` sends a signal to a child by
PID (SIGKILL to simulate a crash) and :meth:`ProcessNetwork.restart` starts it again on the same
folders, where it resumes.

Traffic: each daemon writes its transport's counters to ``NAME/state/traffic.json`` (at most once a
second and when it stops); :meth:`ProcessNetwork.traffic` reads them, with the counters of the
clients this process made (:meth:`ProcessNetwork.client`). A daemon killed with SIGKILL reports what
it had written last; a restarted one counts from zero again.

Ledger: ``ledger="sqlite"`` (default) is the hub's ledger file. ``ledger="evm"`` puts the ledger on
a chain: an anvil node started here in ``ROOT/chain`` (its state kept across restarts), or any chain
given by ``rpc``; the network's contracts are deployed on it and the hub relays transactions to
them, while every daemon and every client made here reads the ledger from the chain itself
(:class:`~deai.node.launch.chain.ChainRef`). ``restart("chain")`` stops anvil (it dumps its state)
and starts it again on the same port. :meth:`ProcessNetwork.ledger` opens the ledger for a report.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deai.core.accounts import Account
from deai.learn.data import Dataset
from deai.ledger.base import Ledger
from deai.ledger.config import NetworkConfig
from deai.ledger.txs import Mint
from deai.net.links import Traffic
from deai.node.launch.chain import ChainRef, deploy_ledger
from deai.node.launch.serve import hub_client, parse_accounts, spawn_hub, spawn_node, wait_for_url
from deai.node.participant.client import HubClient
from deai.node.participant.daemon import DaemonTraffic, read_traffic
from deai.node.participant.host import read_ready
from deai.node.participant.policy import policy_args

__all__ = ["NodeSpec", "ProcessNetwork", "write_npz"]


def write_npz(folder: Path, address: str, data: Dataset) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / f"{address}.npz", x=data.x.numpy(), y=data.y.numpy())


@dataclass
class NodeSpec:
    roles: list[str]
    accounts: list[str]  # account specs
    behaviours: dict[str, str] = field(default_factory=dict)
    data: bool = False
    proc: subprocess.Popen | None = None
    policy: dict[str, int] = field(default_factory=dict)  # JoinPolicy fields given as flags


class ProcessNetwork:
    def __init__(
        self,
        root: str | Path,
        *,
        network: str = "deai-local",
        seed: int = 0,
        config: Mapping | None = None,
        ledger: str = "sqlite",
        rpc: str | None = None,
    ):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.network, self.seed = network, seed
        self.minter = Account.from_seed(f"{network}:{seed}:minter", 0)
        self.hub_spec = f"seed:{network}:{seed}:hub:0"
        self.hub_account = parse_accounts([self.hub_spec])[0]
        # the hub resolves the inference jobs users create, so the genesis lists it as a resolver
        defaults = {"resolve_grace_ms": 5_000, "resolvers": (self.hub_account.address,)}
        genesis = NetworkConfig(
            minter=self.minter.address, network=network, **{**defaults, **dict(config or {})}
        )
        self.genesis_path = self.root / "genesis.json"
        self.genesis_path.write_text(json.dumps(genesis.to_dict()))
        self.genesis = genesis
        self.anvil: Any = None  # the AnvilNode started here, if any
        self.chain: ChainRef | None = None
        if ledger == "evm":
            if rpc is None:
                from deai.ledger.evm.node import AnvilNode

                self.anvil = AnvilNode(self.root / "chain").start()
                rpc = self.anvil.url
            self.chain = deploy_ledger(rpc, genesis)
        elif ledger != "sqlite" or rpc is not None:
            raise ValueError(f"ledger {ledger!r} (rpc {rpc!r}): use sqlite, or evm with an optional rpc")
        self.hub_proc: subprocess.Popen | None = None
        self.url: str | None = None
        self.nodes: dict[str, NodeSpec] = {}
        self.clients: list[HubClient] = []  # the clients made here (their transports count bytes)

    @property
    def hub_dir(self) -> Path:
        return self.root / "hub"

    def start_hub(self, port: int = 0) -> str:
        self.hub_proc = spawn_hub(
            self.hub_dir, self.hub_spec, genesis=self.genesis_path, port=port, chain=self.chain
        )
        self.url = wait_for_url(self.hub_dir, self.hub_proc)
        return self.url

    def client(self, signer: Account) -> HubClient:
        client = hub_client(self._hub_url(), signer, chain=self.chain)
        self.clients.append(client)
        return client

    def traffic(self) -> list[DaemonTraffic]:
        """What every daemon reported in its ``traffic.json`` (those that wrote none are left out),
        then one entry per client made here (named by its signer's address, no roles)."""
        out = []
        for name in self.nodes:
            t = read_traffic(self.root / name / "state")
            if t is not None:
                t.name = name
                out.append(t)
        for c in self.clients:
            t = getattr(c.transport, "traffic", None)
            out.append(
                DaemonTraffic(c.signer.address, {}, Traffic().add(t) if isinstance(t, Traffic) else Traffic())
            )
        return out

    def _hub_url(self) -> str:
        assert self.url is not None, "start_hub() first"
        return self.url

    def fund(self, addresses: Sequence[str], amount: int) -> None:
        client = self.client(self.minter)
        client.submit([(self.minter, Mint(to=a, amount=amount)) for a in addresses])

    def start_node(
        self,
        name: str,
        roles: Sequence[str],
        accounts: Sequence[str],
        *,
        data: Mapping[str, Dataset] | None = None,
        behaviours: Mapping[str, str] | None = None,
        policy: Mapping[str, int] | None = None,
    ) -> subprocess.Popen:
        """Start a daemon ``name`` for ``roles`` and ``accounts`` (specs); ``policy``: its
        :class:`~deai.node.participant.policy.JoinPolicy` fields (default: the policy's defaults)."""
        folder = self.root / name
        if data:
            for address, ds in data.items():
                write_npz(folder / "data", address, ds)
        spec = NodeSpec(
            list(roles), list(accounts), dict(behaviours or {}), bool(data), policy=dict(policy or {})
        )
        self.nodes[name] = spec
        return self._spawn(name)

    def _spawn(self, name: str) -> subprocess.Popen:
        spec, folder = self.nodes[name], self.root / name
        spec.proc = spawn_node(
            self._hub_url(),
            spec.roles,
            spec.accounts,
            folder / "state",
            data_dir=folder / "data" if spec.data else None,
            behaviours=spec.behaviours,
            log=folder / "node.log",
            extra_args=policy_args(spec.policy),
            chain=self.chain,
        )
        return spec.proc

    def wait_ready(self, model_id: str, names: Sequence[str] | None = None, timeout: float = 120.0) -> None:
        """Wait until the host daemons ``names`` (default: every node with the host role) announce
        they are ready to serve ``model_id`` (:func:`~deai.node.participant.host.read_ready`). Raises
        TimeoutError naming those that are not, or RuntimeError if one exited."""
        names = [n for n in self.nodes if "host" in self.nodes[n].roles] if names is None else list(names)
        deadline = time.monotonic() + timeout
        while True:
            waiting = [n for n in names if model_id not in read_ready(self.root / n / "state")]
            if not waiting:
                return
            dead = [n for n in waiting if (p := self.nodes[n].proc) is not None and p.poll() is not None]
            if dead:
                raise RuntimeError(f"host daemon(s) {dead} exited; see their node.log")
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"host daemon(s) {waiting} not ready to serve {model_id} after {timeout:.0f} s"
                )
            time.sleep(0.1)

    def ledger(self) -> Ledger:
        """The network's ledger, opened here for reading: the hub's file (stop the hub first) or
        the contract on the chain (which must still run: :meth:`stop` with ``keep_chain``)."""
        if self.chain is None:
            from deai.ledger.sqlite import SqliteLedger

            return SqliteLedger(self.hub_dir / "ledger.sqlite")
        from deai.node.launch.chain import hub_ledger

        return hub_ledger(self.chain, self.genesis)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        if name == "chain":
            assert self.anvil is not None, "the chain was not started here"
            self.anvil.stop()  # SIGINT: anvil dumps its state on the way out
            return
        proc = self.hub_proc if name == "hub" else self.nodes[name].proc
        assert proc is not None, f"{name} was never started"
        proc.send_signal(sig)
        proc.wait(timeout=30)

    def restart(self, name: str) -> None:
        if name == "chain":
            assert self.anvil is not None, "the chain was not started here"
            self.anvil.stop()
            self.anvil.start()  # the same port and state file: the chain continues
        elif name == "hub":
            port = int(self._hub_url().rsplit(":", 1)[1])
            self.start_hub(port=port)
        else:
            self._spawn(name)

    def stop(self, timeout: float = 10.0, *, keep_chain: bool = False) -> None:
        """Stop every daemon and the hub (SIGTERM, then SIGKILL after ``timeout``), then the chain
        started here unless ``keep_chain`` (stop it later with :meth:`stop_chain`)."""
        procs = [n.proc for n in self.nodes.values() if n.proc is not None]
        if self.hub_proc is not None:
            procs.append(self.hub_proc)
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if not keep_chain:
            self.stop_chain()

    def stop_chain(self) -> None:
        if self.anvil is not None:
            self.anvil.stop()

    def __enter__(self) -> ProcessNetwork:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
