"""The ``compute_provider`` role: execute the verified jobs the hosted accounts are drawn for.

Each hosted account polls ``job.assignments`` (signed by itself: the activation flag is private),
hands each assignment to its :class:`~deai.protocol.task.executor.ExecutorAgent` (honest or a named
cheater, ``behaviours[address]``), uploads the output blobs it produced and submits its commit and
reveal transactions. Job inputs are fetched into a local blob store under the state folder
(verified by hash). The agents' commitments (digest and salt) are in :attr:`memory`, saved by the
daemon, so a restarted compute provider still reveals what it committed to.
"""

from __future__ import annotations

from deai.core.blobs import BlobStore
from deai.ledger.config import COMPUTE
from deai.node.roles import Role, register_role
from deai.node.staking import claim_payouts, ensure_stake
from deai.protocol.task.executor import ExecutorAgent

__all__ = ["CLAIM_EVERY", "ComputeProviderRole", "setup_executors"]

CLAIM_EVERY = 10


def setup_executors(role: Role) -> None:
    """Give ``role`` a blob store and one :class:`ExecutorAgent` per hosted account (honest or its
    named behaviour), remembering the agents' commitments in the role's memory across restarts.

    In one process with the hub (simulations) the executors may read the hub's own store: nothing
    to copy, and every read still re-hashes the bytes.
    """
    role.shared = role.ctx.options.get("shared_store")
    role.store = role.shared or BlobStore(role.ctx.state_dir / "blobs", fsync=False)
    agents = role.memory.setdefault("agents", {})
    role.agents = {
        a: ExecutorAgent(
            acct,
            role.store,
            role.ctx.behaviours.get(a, "honest"),
            agents.setdefault(a, {"committed": {}, "revealed": []}),
        )
        for a, acct in role.accounts.items()
    }


@register_role("compute_provider")
class ComputeProviderRole(Role):
    def setup(self) -> None:
        ensure_stake(self.client, self.accounts.values(), COMPUTE, self.ctx.options.get("compute_stake"))
        setup_executors(self)
        self._idle, self._unclaimed = False, True

    def done(self) -> bool:
        """Idle at the last poll, and no finished task left to claim from."""
        return self._idle and not self._unclaimed

    def _claim(self) -> bool:
        """Claim the compute-pool payouts of tasks that are over (once per task). Checked when
        idle, and every ``CLAIM_EVERY`` polls while busy, not to load the hub."""
        self._polls = getattr(self, "_polls", -1) + 1
        if not self._idle and self._polls % CLAIM_EVERY:
            self._unclaimed = True
            return False
        tasks = self.client.call("task.list")["tasks"]
        claimed = self.memory.setdefault("claimed", [])
        over = [t for t, i in tasks.items() if i["phase"] in ("done", "failed") and t not in claimed]
        self._unclaimed = any(i["phase"] not in ("done", "failed") for i in tasks.values())
        for task in over:
            claim_payouts(self.client, task, self.accounts.values())
            claimed.append(task)
        return bool(over)

    def step(self) -> bool:
        """Poll every hosted account's assignments, then act: cheap actions first (standby decoy
        commits, reveals), the executions after, so one busy executor does not hold back the
        commit phase of the others' jobs."""
        did, self._idle = False, True
        polled = []
        for address in self.agents:
            reply = self.client.call("job.assignments", account=self.accounts[address])
            self._idle &= not reply["assignments"]
            polled.append((address, reply))
        for costly in (False, True):
            for address, reply in polled:
                agent, account = self.agents[address], self.accounts[address]
                items = []
                for a in reply["assignments"]:
                    executes = a["active"] and a["job"] not in agent.memory["committed"]
                    if executes != costly:
                        continue
                    act = agent.on_assignment(a, reply["time"], lambda d: self.client.fetch_to(self.store, d))
                    for digest in act.uploads if self.shared is None else ():
                        self.client.put_blob(self.store.get(digest), expected=digest)
                    items += [(account, tx) for tx in act.txs]
                if items:
                    self.client.submit(items, check=False)  # a late or refused message: the ledger decides
                    did = True
        for address, reply in polled:
            self.agents[address].forget({a["job"] for a in reply["assignments"]})
        return self._claim() or did
