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
from deai.core.errors import DeaiError
from deai.ledger.config import COMPUTE
from deai.node.roles import Role, register_role
from deai.node.staking import claim_payouts, ensure_stake
from deai.protocol.jobs.spec import JobSpec
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
        """Poll every hosted account's assignments (at once), then act: the cheap actions of all
        accounts first (standby decoy commits, reveals) in one ledger submit, then the executions,
        their inputs fetched together beforehand and each commit sent as soon as its job ran, so
        one busy executor does not hold back the commit phase of the others' jobs."""
        addresses = list(self.agents)
        replies = self.client.call_many([("job.assignments", None, self.accounts[a]) for a in addresses])
        polled = list(zip(addresses, replies, strict=True))
        self._idle = not any(reply["assignments"] for _, reply in polled)
        cheap, costly = [], []
        for address, reply in polled:
            memory = self.agents[address].memory
            for a in reply["assignments"]:
                executes = a["active"] and a["job"] not in memory["committed"]
                (costly if executes else cheap).append((address, reply["time"], a))
        specs = [  # the job specs (their ids are their digests), fetched together
            a["job"].removeprefix("0x")
            for address, _, a in cheap + costly
            if a["job"] not in self.agents[address].memory["revealed"]
        ]
        self._fetch_many(specs)
        did = self._act(cheap)
        if costly:
            self._prefetch([a for _, _, a in costly])
        for item in costly:
            did |= self._act([item])
        for address, reply in polled:
            self.agents[address].forget({a["job"] for a in reply["assignments"]})
        return self._claim() or did

    def _act(self, items: list[tuple[str, int, dict]]) -> bool:
        """Hand each ``(address, now, assignment)`` to its agent; upload what they produced, then
        submit their transactions in one batch. True if anything was sent."""
        txs, uploads = [], []
        for address, now, a in items:
            act = self.agents[address].on_assignment(
                a, now, lambda d: self.client.fetch_to(self.store, d), self._fetch_many
            )
            uploads += act.uploads
            txs += [(self.accounts[address], tx) for tx in act.txs]
        if uploads and self.shared is None:
            self.client.put_blobs([(self.store.get(d), d) for d in dict.fromkeys(uploads)])
        if txs:
            self.client.submit(txs, check=False)  # a late or refused message: the ledger decides
        return bool(txs)

    def _fetch_many(self, digests: list[str]) -> None:
        self.client.fetch_many(self.store, digests)

    def _prefetch(self, assignments: list[dict]) -> None:
        """Fetch the inputs of every job about to run at once (they often share the updates)."""
        inputs: list[str] = []
        for a in assignments:
            job = a["job"]
            try:
                inputs += JobSpec.from_bytes(self.store.get(job.removeprefix("0x")), job_id=job).inputs
            except DeaiError:  # a bad spec: its agent refuses it when it gets there
                continue
        self._fetch_many(inputs)
