"""The ``compute_provider`` role: execute the verified jobs the hosted accounts are drawn for.

Each hosted account polls ``job.assignments`` (signed by itself: the activation flag is private),
hands each assignment to its :class:`~deai.protocol.task.executor.ExecutorAgent` (honest or a named
cheater, ``behaviours[address]``), uploads the output blobs it produced and submits its commit and
reveal transactions. Job inputs are fetched into a local blob store under the state folder
(verified by hash). The agents' commitments (digest and salt) are in :attr:`memory`, saved by the
daemon, so a restarted compute provider still reveals what it committed to.

Being drawn binds nobody; committing does (a commitment not revealed in time is slashed). So an
:class:`ExecutorRole` (compute providers and hosts) commits only to jobs its
:class:`~deai.node.participant.policy.JoinPolicy` accepts (the fee, the reveal window) and that it can
finish in time by its own estimate (:class:`~deai.node.participant.policy.Timing`), reads each job's
fee and deadlines from the ledger (not from the hub's word), and sends its due reveals before any new work.
"""

from __future__ import annotations

import logging

from deai.core.blobs import BlobStore
from deai.core.errors import DeaiError
from deai.ledger.config import COMPUTE
from deai.ledger.records import JobRecord
from deai.ledger.txs import Commit
from deai.net.transport import RemoteError
from deai.node.participant.policy import JoinPolicy, Refusals, Timing
from deai.node.participant.roles import ROLES, Role
from deai.node.participant.staking import claim_payouts, ensure_stake
from deai.protocol.jobs.spec import JobSpec
from deai.protocol.task.executor import ExecutorAgent

__all__ = ["CLAIM_EVERY", "ComputeProviderRole", "ExecutorRole", "setup_executors"]

log = logging.getLogger(__name__)

CLAIM_EVERY = 10


def setup_executors(role: ExecutorRole) -> None:
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


class ExecutorRole(Role):
    """A role whose accounts execute verified jobs of ``stake_role`` (see the module docstring)."""

    stake_role = COMPUTE
    stake_option = "compute_stake"  # the options key of the stake to hold (default: the minimum)
    shared: BlobStore | None  # the hub's own store, in one process with it (set up by setup_executors)
    store: BlobStore
    agents: dict[str, ExecutorAgent]

    def setup(self) -> None:
        ensure_stake(
            self.client, self.accounts.values(), self.stake_role, self.ctx.options.get(self.stake_option)
        )
        setup_executors(self)
        self.policy = JoinPolicy.from_options(self.ctx.options)
        self.timing = Timing(self.policy)
        self.refused = Refusals(what=f"{self.name} job")
        self.jobs: dict[str, JobRecord | None] = {}  # the ledger's records of the live jobs
        self._idle = False

    # -- hooks ----------------------------------------------------------------------------------------

    def refusal(self, job_id: str, record: JobRecord) -> str | None:
        """Why this role does not take the job at all (besides the policy), or None."""
        if record.role != self.stake_role:
            return f"it is a {record.role} job"
        return None

    # -- the poll -------------------------------------------------------------------------------------

    def _records(self, job_ids: list[str]) -> None:
        """Read the ledger's record of each job not seen yet (fee, deadlines, kind)."""
        new = [j for j in dict.fromkeys(job_ids) if j not in self.jobs]
        records = self.client.query_many([("job", {"job_id": j}) for j in new])  # parsed at the edge
        for j, record in zip(new, records, strict=True):
            self.jobs[j] = record

    def _pending(self) -> list[int]:
        """The reveal deadlines of jobs some hosted account committed to (a real commitment, not a
        decoy) and has not revealed yet: their reveals must not be delayed past them."""
        out = []
        for agent in self.agents.values():
            mem = agent.memory
            for job, opening in mem["committed"].items():
                record = self.jobs.get(job)
                if opening is not None and job not in mem["revealed"] and record is not None:
                    out.append(record.reveal_deadline)
        return out

    def work(self) -> bool:
        """Poll every hosted account's assignments (at once), then act: the cheap actions of all
        accounts first (standby decoy commits, reveals) in one ledger submit, then the executions,
        their inputs fetched together beforehand and each commit sent as soon as its job ran, so
        one busy executor does not hold back the commit phase of the others' jobs. A job is taken
        (its first commit) only if the policy and the timing allow it."""
        addresses = list(self.agents)
        replies = self.client.call_many([("job.assignments", None, self.accounts[a]) for a in addresses])
        polled = list(zip(addresses, replies, strict=True))
        self._idle = not any(reply["assignments"] for _, reply in polled)
        live = {a["job"] for _, reply in polled for a in reply["assignments"]}
        self.jobs = {j: r for j, r in self.jobs.items() if j in live}
        self.refused.keep(live)
        self._records(sorted(live))
        now = max((reply["time"] for _, reply in polled), default=0)
        cheap: list[tuple[str, int, dict]] = []
        costly: list[tuple[str, int, dict]] = []
        for address, reply in polled:
            memory = self.agents[address].memory
            for a in reply["assignments"]:
                job = a["job"]
                if job not in memory["committed"]:  # not taken yet: may this daemon take it?
                    if job in self.refused:
                        continue
                    record = self.jobs[job]
                    why = self.policy.job_refusal(record) or (record and self.refusal(job, record))
                    if why or record is None:
                        self.refused.add(job, why or "the job is not on the ledger")
                        continue
                    a = {
                        **a,
                        "commit_deadline": record.commit_deadline,
                        "reveal_deadline": record.reveal_deadline,
                    }
                executes = a["active"] and job not in memory["committed"]
                (costly if executes else cheap).append((address, reply["time"], a))
        specs = [  # the job specs (their ids are their digests), fetched together
            a["job"].removeprefix("0x")
            for address, _, a in cheap + costly
            if a["job"] not in self.agents[address].memory["revealed"]
        ]
        self._fetch_many(specs)
        did, _ = self._act(cheap)
        if costly:
            self._prefetch([a for _, _, a in costly])
        for item in costly:
            job_id = item[2]["job"]
            record = self.jobs[job_id]
            if record is None:  # taken before, and gone from the ledger's answers since
                continue
            kind = record.job_type
            why = self.timing.too_late(kind, now, record.commit_deadline)
            if why:
                self.refused.add(job_id, why)
                continue
            if self.timing.blocks_reveal(kind, now, self._pending()):
                continue  # reveal first (a later poll), then reconsider
            sent, at = self._act([item])
            if sent and at is not None:
                self.timing.record(kind, at - now)
                now = max(now, at)
            did |= sent
        did |= self._publish(polled)
        for address, reply in polled:
            self.agents[address].forget({a["job"] for a in reply["assignments"]})
        return did

    def _publish(self, polled: list[tuple[str, dict]]) -> bool:
        """Tell the hub the output digest of each job where this account is the producer whose
        output drawn verifiers check (``publish`` in the assignment, e.g. the primary of an
        ``llm_generate`` job), once the output is uploaded and committed. The digest is not secret
        there: the verifiers' outputs are verdicts, which cannot be copied from it."""
        calls = []
        for address, reply in polled:
            committed = self.agents[address].memory["committed"]
            for a in reply["assignments"]:
                opening = committed.get(a["job"])
                if a.get("publish") and not a.get("answer") and opening is not None:
                    body = {"job": a["job"], "answer": opening["digest"].removeprefix("0x")}
                    calls.append(("llm.answer", body, self.accounts[address]))
        for kind, body, account in calls:
            try:
                self.client.call(kind, body, account=account)
            except RemoteError as exc:  # logged; the next poll tries again while the job is open
                log.warning("the hub refused the answer of job %s: %s", body["job"], exc)
        return bool(calls)

    def _act(self, items: list[tuple[str, int, dict]]) -> tuple[bool, int | None]:
        """Hand each ``(address, now, assignment)`` to its agent; upload what they produced, then
        submit their transactions in one batch. Returns whether anything was sent and the ledger
        time of the last transaction it took (None if none)."""
        txs, uploads = [], []
        for address, now, a in items:
            act = self.agents[address].on_assignment(
                a, now, lambda d: self.client.fetch_to(self.store, d), self._fetch_many
            )
            uploads += act.uploads
            txs += [(self.accounts[address], tx) for tx in act.txs]
        if uploads and self.shared is None:
            self.client.put_blobs([(self.store.get(d), d) for d in dict.fromkeys(uploads)])
        if not txs:
            return False, None
        results = self.client.submit(txs, check=False)  # a late or refused message: the ledger decides
        for (account, tx), r in zip(txs, results, strict=True):
            if isinstance(tx, Commit) and not r.get("ok") and r.get("error") != "DuplicateCommit":
                # not committed (e.g. it landed after the deadline): no duty to reveal, nothing
                # held; the job is not tried again
                self.agents[account.address].memory["committed"].pop(tx.job, None)
                self.agents[account.address].executor.openings.pop(tx.job, None)
                self.refused.add(
                    tx.job, f"the ledger refused the commit: {r.get('error')}: {r.get('reason')}"
                )
        times = [r["time"] for r in results if r.get("ok") and isinstance(r.get("time"), int)]
        return True, max(times) if times else None

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


@ROLES.register("compute_provider")
class ComputeProviderRole(ExecutorRole):
    def setup(self) -> None:
        super().setup()
        self._unclaimed = True

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
        did = self.work()
        return self._claim() or did
