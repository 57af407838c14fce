"""The ``host`` role: stake as a host and answer the verified inference jobs the ledger draws.

A host daemon stakes each of its accounts in the ``host`` role (``options["host_stake"]``, at least
the network's minimum), then polls ``job.assignments`` like a compute provider
(:mod:`deai.node.compute_role`), but it serves models: for an ``infer`` job it first makes sure it
holds the model's checkpoint -- fetched by hash from the hub, re-hashed, parsed as safetensors and
checked against the architecture the job names (names, shapes, dtypes, finite) -- once per
checkpoint, cached in its blob store and remembered in :attr:`memory`. A checkpoint that fails the
check is refused: the host does not commit to that job (it may be slashed as silent, but never
for a wrong answer). Other job kinds are refused: a host serves models only.

Behaviours (``behaviours[address]``): ``honest`` or any cheating executor, including
``wrong_answer`` (:mod:`deai.protocol.inference.hosts`): a plausible wrong answer.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import deai.protocol.inference.hosts  # noqa: F401 - registers the wrong_answer behaviour
from deai.core.accounts import Account
from deai.core.encoding import canonical, sha256_hex
from deai.core.errors import DeaiError
from deai.core.tensorio import from_safetensors
from deai.ledger.config import HOST
from deai.node.compute_role import setup_executors
from deai.node.roles import Role, register_role
from deai.node.staking import ensure_stake
from deai.protocol.jobs.kinds.model import load_model
from deai.protocol.jobs.spec import JobSpec

__all__ = ["HostRole", "ensure_hosts"]

log = logging.getLogger(__name__)


@register_role("host")
class HostRole(Role):
    def setup(self) -> None:
        ensure_stake(self.client, self.accounts.values(), HOST, self.ctx.options.get("host_stake"))
        setup_executors(self)
        self.verified: dict[str, Any] = self.memory.setdefault("models", {})  # key -> checkpoint
        self.refused: set[str] = set()

    def _fetch(self, digest: str) -> None:
        self.client.fetch_to(self.store, digest)

    def _servable(self, job: str) -> bool:
        """Fetch the job's spec; for an ``infer`` job, fetch and verify its checkpoint once."""
        if job in self.refused:
            return False
        try:
            self._fetch(job.removeprefix("0x"))
            spec = JobSpec.from_bytes(self.store.get(job.removeprefix("0x")), job_id=job)
            if spec.kind != "infer":
                raise ValueError(f"a host serves infer jobs only, not {spec.kind!r}")
            checkpoint = spec.inputs[0]
            key = sha256_hex(canonical({"checkpoint": checkpoint, "params": dict(spec.params)}))
            if key not in self.verified:
                self._fetch(checkpoint)  # re-hashed on the way in
                load_model(spec.params, from_safetensors(self.store.get(checkpoint)))
                self.verified[key] = checkpoint
            return True
        except (DeaiError, ValueError) as exc:
            log.warning("host refuses job %s: %s: %s", job, type(exc).__name__, exc)
            self.refused.add(job)
            return False

    def done(self) -> bool:
        """Idle at the last poll (a host is never finished; runners stop when everyone idles)."""
        return getattr(self, "_idle", False)

    def step(self) -> bool:
        did, self._idle, everywhere = False, True, set()
        for address, agent in self.agents.items():
            account = self.accounts[address]
            reply = self.client.call("job.assignments", account=account)
            now, live, items = reply["time"], set(), []
            self._idle &= not reply["assignments"]
            for a in reply["assignments"]:
                live.add(a["job"])
                if not self._servable(a["job"]):
                    continue
                act = agent.on_assignment(a, now, self._fetch)
                for digest in act.uploads if self.shared is None else ():
                    self.client.put_blob(self.store.get(digest), expected=digest)
                items += [(account, tx) for tx in act.txs]
            if items:
                self.client.submit(items, check=False)  # a late or refused message: the ledger decides
                did = True
            agent.forget(live)
            everywhere |= live
        self.refused &= everywhere
        return did


def ensure_hosts(net: Any, hosts: Sequence[Account], *, tag: str, behaviours=None, stake: int | None = None):
    """Start host daemons for ``hosts`` on a network, staked with ``stake`` (default: the minimum).

    ``net`` is a :class:`~deai.node.network.LocalNetwork` (one daemon hosting every host account;
    added once) or a :class:`~deai.node.localnet.ProcessNetwork` (one process per host, named
    ``host{i}``, account spec ``seed:{tag}h:{i}`` as :class:`~deai.node.plan.NetworkPlan` makes them;
    already started ones are left alone). Over processes the stake is placed here, before the
    daemon starts, so the daemon's own nonces are never raced.
    """
    behaviours = dict(behaviours or {})
    mine = {a.address: behaviours[a.address] for a in hosts if a.address in behaviours}
    if hasattr(net, "add_daemon"):
        if not any("host" in d.roles for d in net.daemons):
            net.add_daemon("hosts", {"host": list(hosts)}, behaviours=mine, options={"host_stake": stake})
        return
    fresh = [(i, a) for i, a in enumerate(hosts) if f"host{i}" not in net.nodes]
    if fresh and stake:
        ensure_stake(net.client(fresh[0][1]), [a for _, a in fresh], HOST, stake)
    for i, a in fresh:
        b = {a.address: mine[a.address]} if a.address in mine else {}
        net.start_node(f"host{i}", ["host"], [f"seed:{tag}h:{i}"], behaviours=b)
