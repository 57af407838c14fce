"""The ``host`` role: stake as a host, get ready to serve new models, answer the infer jobs drawn.

A host daemon stakes each of its accounts in the ``host`` role (``options["host_stake"]``, at least
the network's minimum), then polls ``job.assignments`` like a compute provider
(:mod:`deai.node.participant.compute`: the same join policy and timing discipline), but it serves models:
for an ``infer`` job it first makes sure it holds the model's checkpoint -- fetched by hash from
the hub, re-hashed, parsed as safetensors and checked against the architecture the job names
(names, shapes, dtypes, finite) -- once per checkpoint, cached in its blob store and remembered in
:attr:`memory`. A checkpoint that fails the check is refused: the host does not commit to that job
(being drawn binds nobody, so it loses nothing). Other job kinds are refused: a host serves models.

**Readiness.** The ledger draws among every staked host, ready or not, so a host gets ready before
anyone asks: it follows the ledger's ``model_registered`` events and prepares (fetches and checks)
each model a task of *this hub* produced (its coordinator is the hub's account; the task paid for
it) as soon as it is registered -- at most :data:`MAX_READY` models, the oldest forgotten first.
Other models (registered directly by anyone) are prepared on their first paid job only, so an
outsider cannot make every host download its blobs. What it is ready to serve is observable:
:meth:`HostRole.ready_models` in process, and ``STATE/ready.json`` (``{"models": {model id:
checkpoint}}``, written atomically) for launchers (:meth:`ProcessNetwork.wait_ready
<deai.node.launch.processes.ProcessNetwork.wait_ready>`), which send inference requests only once the
hosts they started are ready.

Behaviours (``behaviours[address]``): ``honest`` or any cheating executor, including
``wrong_answer`` (:mod:`deai.protocol.jobs.cheaters.wrong_answer`): a plausible wrong answer.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from deai.core.accounts import Account
from deai.core.encoding import canonical, sha256_hex
from deai.core.errors import DeaiError
from deai.core.tensorio import from_safetensors
from deai.ledger.config import HOST
from deai.ledger.records import JobRecord
from deai.node.participant.compute import ExecutorRole
from deai.node.participant.roles import ROLES
from deai.node.participant.served import remote_model
from deai.node.participant.staking import ensure_stake
from deai.protocol.inference.llm import jobs as _llm_jobs  # noqa: F401 - the llm kinds and cheaters
from deai.protocol.jobs.kinds.model import load_model
from deai.protocol.jobs.spec import JobSpec

__all__ = ["MAX_READY", "READY_FILE", "HostRole", "ensure_hosts", "read_ready"]

log = logging.getLogger(__name__)

MAX_READY = 16  # models kept prepared from registrations
MAX_VERIFIED = 64  # (checkpoint, architecture) pairs remembered as checked
READY_FILE = "ready.json"
FOLLOW_EVERY_S = 0.5  # how often the ledger's new events are read for model registrations
PAGE = 1000  # events read at once


def _key(checkpoint: str, params: dict[str, Any]) -> str:
    return sha256_hex(canonical({"checkpoint": checkpoint, "params": dict(params)}))


def read_ready(state_dir: str | Path) -> dict[str, str]:
    """The models a host daemon with this state folder announced it is ready to serve
    (``{model id: checkpoint}``; empty if it has not written any yet)."""
    try:
        return dict(json.loads((Path(state_dir) / READY_FILE).read_text())["models"])
    except (OSError, ValueError, KeyError, TypeError):
        return {}


@ROLES.register("host")
class HostRole(ExecutorRole):
    stake_role = HOST
    stake_option = "host_stake"

    def setup(self) -> None:
        super().setup()
        self.verified: dict[str, Any] = self.memory.setdefault("models", {})  # key -> checkpoint
        self.ready: dict[str, str] = self.memory.setdefault("ready", {})  # model id -> checkpoint
        self.memory.setdefault("cursor", 0)
        self.coordinator = self.client.info()["coordinator"]
        self._next_follow = 0.0
        self._announce()

    def _fetch(self, digest: str) -> None:
        self.client.fetch_to(self.store, digest)

    def _check(self, checkpoint: str, params: dict[str, Any]) -> None:
        """Fetch ``checkpoint`` (re-hashed on the way in) and check it is a model of ``params``,
        once per (checkpoint, params)."""
        key = _key(checkpoint, params)
        if key not in self.verified:
            self._fetch(checkpoint)
            load_model(params, from_safetensors(self.store.get(checkpoint)))
            self.verified[key] = checkpoint
            while len(self.verified) > MAX_VERIFIED:  # remembered, not trusted: a forgotten one is rechecked
                self.verified.pop(next(iter(self.verified)))

    def refusal(self, job_id: str, record: JobRecord) -> str | None:
        """Serve ``infer`` jobs whose checkpoint checks out (fetched and checked once)."""
        why = super().refusal(job_id, record)
        if why:
            return why
        try:
            self._fetch(job_id.removeprefix("0x"))
            spec = JobSpec.from_bytes(self.store.get(job_id.removeprefix("0x")), job_id=job_id)
            if spec.kind not in ("infer", "llm_generate"):
                return f"a host serves infer and llm_generate jobs only, not {spec.kind!r}"
            model = {k: v for k, v in spec.params.items() if k not in ("generation", "thresholds")}
            self._check(spec.inputs[0], model)
            return None
        except (DeaiError, ValueError) as exc:
            return f"{type(exc).__name__}: {exc}"

    # -- readiness ------------------------------------------------------------------------------------

    def ready_models(self) -> dict[str, str]:
        """The models this host is ready to serve (model id -> checkpoint digest)."""
        return dict(self.ready)

    def _announce(self) -> None:
        path = self.ctx.state_dir / READY_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"models": self.ready}))
        os.replace(tmp, path)

    def _follow_models(self) -> bool:
        """Read the ledger's new events (every FOLLOW_EVERY_S at most) and prepare the models
        registered by tasks of this hub. True if a model got ready."""
        if time.monotonic() < self._next_follow:
            return False
        self._next_follow = time.monotonic() + FOLLOW_EVERY_S
        events, cursor = self.client.events(self.memory["cursor"], PAGE)
        self.memory["cursor"] = cursor
        if len(events) >= PAGE:  # more to read (a host started late): no pause before the next page
            self._next_follow = 0.0
        did = False
        for e in events:
            if e.get("kind") == "model_registered":
                did |= self._prepare(e.get("data") or {})
        return did

    def _prepare(self, event: dict[str, Any]) -> bool:
        model_id, task = event.get("model"), event.get("task")
        if not isinstance(model_id, str) or model_id in self.ready or task is None:
            return False  # models registered directly: prepared on a paid job only
        try:
            record = self.client.query("task", task_id=task)
            if record is None or record.coordinator != self.coordinator:
                return False  # not produced by this hub's coordination
            served = remote_model(self.client, model_id)
            self._check(served.checkpoint, dict(served.params))
        except (DeaiError, ValueError) as exc:
            log.warning("host cannot serve model %s: %s: %s", model_id, type(exc).__name__, exc)
            return False
        self.ready[model_id] = served.checkpoint
        while len(self.ready) > MAX_READY:
            self.ready.pop(next(iter(self.ready)))
        self._announce()
        log.info("host ready to serve model %s", model_id)
        return True

    # -- the poll -------------------------------------------------------------------------------------

    def done(self) -> bool:
        """Idle at the last poll (a host is never finished; runners stop when everyone idles)."""
        return self._idle

    def step(self) -> bool:
        did = self.work()  # reveals and commits first: they have deadlines
        return self._follow_models() or did


def ensure_hosts(
    net: Any,
    hosts: Sequence[Account],
    *,
    tag: str,
    behaviours=None,
    stake: int | None = None,
    policy: dict[str, int] | None = None,
) -> list[str]:
    """Start host daemons for ``hosts`` on a network, staked with ``stake`` (default: the minimum).

    ``net`` is a :class:`~deai.node.launch.inprocess.LocalNetwork` (one daemon hosting every host account;
    added once) or a :class:`~deai.node.launch.processes.ProcessNetwork` (one process per host, named
    ``host{i}``, account spec ``seed:{tag}h:{i}`` as :class:`~deai.sim.plan.NetworkPlan` makes them;
    already started ones are left alone). Over processes the stake is placed here, before the
    daemon starts, so the daemon's own nonces are never raced. ``policy``: the daemons'
    :class:`~deai.node.participant.policy.JoinPolicy` fields. Returns the names of the host daemons (for the
    network's ``wait_ready``).
    """
    behaviours = dict(behaviours or {})
    mine = {a.address: behaviours[a.address] for a in hosts if a.address in behaviours}
    if hasattr(net, "add_daemon"):
        if not any("host" in d.roles for d in net.daemons):
            options = {"host_stake": stake, "policy": dict(policy or {})}
            net.add_daemon("hosts", {"host": list(hosts)}, behaviours=mine, options=options)
        return ["hosts"]
    fresh = [(i, a) for i, a in enumerate(hosts) if f"host{i}" not in net.nodes]
    if fresh and stake:
        ensure_stake(net.client(fresh[0][1]), [a for _, a in fresh], HOST, stake)
    for i, a in fresh:
        b = {a.address: mine[a.address]} if a.address in mine else {}
        net.start_node(f"host{i}", ["host"], [f"seed:{tag}h:{i}"], behaviours=b, policy=policy)
    return [f"host{i}" for i in range(len(hosts))]
