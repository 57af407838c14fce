"""The ``data_provider`` role: join tasks, train on local data each round, claim, leave.

Data: in-process runners pass ``options["datasets"]`` ({address: Dataset}); a daemon reads
``DATA_DIR/<address>.npz`` (``x``: float [N, F], ``y``: int labels in ``0..C-1``; loaded with
``allow_pickle=False``), as :mod:`deai.cli.up` writes them from a scenario's partition. Both hold
**raw** features: the provider pool puts them through the task's declared preprocessing
(``TaskSpec.preprocessing``) before training, the same way in a simulation and on a real node.

Per poll: join the tasks in their join phase that the daemon's join policy accepts
(:class:`~deai.node.participant.policy.JoinPolicy`: at least ``min_reward`` per provider per round, a provider
stake of at most ``max_task_stake``; a task refused -- by the policy, for a spec that does not
parse, or by the ledger -- is logged once and never retried) in one batched ledger submit for all
hosted accounts;
in a training phase, train every hosted account of the roster at once (cached per round, so a
retry after a restart re-sends the same bytes), upload the update blobs and send the signed
statements of those the hub has not recorded yet -- or, with secure aggregation, answer the
secure-aggregation messages; once a task is over, claim every payout with its Merkle proof and
take the task stake back (``leave_task``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from deai.core.errors import DeaiError, EncodingError
from deai.learn.data import Dataset
from deai.ledger.config import DATA
from deai.ledger.txs import JoinTask, LeaveTask
from deai.node.participant.policy import JoinPolicy, Refusals
from deai.node.participant.roles import ROLES, Role
from deai.node.participant.staking import claim_payouts, ensure_stake
from deai.protocol.task.broadcast import apply_patch
from deai.protocol.task.errors import BadTaskSpec
from deai.protocol.task.model import param_count
from deai.protocol.task.provider import ProviderPool, TrainedUpdate
from deai.protocol.task.records import Phase, RoundView
from deai.protocol.task.spec import TaskSpec

__all__ = ["DataProviderRole", "load_npz"]

log = logging.getLogger(__name__)

OVER = ("done", "failed")


def load_npz(path: Path, num_classes: int) -> Dataset:
    """A provider's own data file (``x``, ``y``; no pickles): labelled features or images (``x`` of
    any numeric dtype -- byte pixels too -- shape kept, as float32) or token windows (integer ``x``
    and ``y`` of the same ``[N, T]`` shape)."""
    with np.load(path, allow_pickle=False) as z:
        x, y = np.asarray(z["x"]), np.asarray(z["y"], dtype=np.int64)
    tokens = x.dtype.kind in "iu" and x.ndim == 2 and y.shape == x.shape
    xt = torch.as_tensor(x.astype(np.int64 if tokens else np.float32))
    return Dataset(xt, torch.as_tensor(y), num_classes, tuple(int(s) for s in x.shape[1:]), path.stem)


@ROLES.register("data_provider")
class DataProviderRole(Role):
    def setup(self) -> None:
        ensure_stake(self.client, self.accounts.values(), DATA, self.ctx.options.get("stake"))
        for k in ("joined", "finished"):
            self.memory.setdefault(k, [])
        self.policy = JoinPolicy.from_options(self.ctx.options)
        self.refused = Refusals(self.memory.setdefault("refused", {}), what="task")
        self.specs: dict[str, TaskSpec] = {}
        self.pools: dict[str, ProviderPool] = {}
        self.trained: dict[tuple[str, int], list[TrainedUpdate]] = {}
        self.secagg_sent: set[tuple] = set()
        self.checkpoints: dict[str, tuple[str, bytes]] = {}  # task -> the last checkpoint (digest, bytes)
        self._open: list[str] = []

    def _spec(self, task: str) -> TaskSpec:
        if task not in self.specs:
            self.specs[task] = TaskSpec.from_bytes(
                self.client.get_blob(task.removeprefix("0x")), task_id=task
            )
        return self.specs[task]

    def _pool(self, task: str, spec: TaskSpec) -> ProviderPool:
        if task not in self.pools:
            given = self.ctx.options.get("datasets")
            if given is not None:
                data = {a: given[a] for a in self.accounts}
            else:
                assert self.ctx.data_dir is not None, "a provider needs a data folder or the datasets option"
                data = {}
                for a in self.accounts:
                    try:
                        data[a] = load_npz(Path(self.ctx.data_dir) / f"{a}.npz", spec.num_classes)
                    except (DeaiError, OSError, KeyError, ValueError) as exc:  # sits this task out
                        log.warning("provider %s: data file unusable for task %s: %s", a, task, exc)
            self.pools[task] = ProviderPool(
                [acct for a, acct in self.accounts.items() if a in data],
                data,
                behaviours=self.ctx.behaviours,
                device=str(self.ctx.options.get("device", "cpu")),
            )
        return self.pools[task]

    def done(self) -> bool:
        """Some task was finished or refused, and none is left open to this daemon."""
        return bool(self.memory.get("finished") or self.memory.get("refused")) and not self._open

    def step(self) -> bool:
        tasks = self.client.call("task.list")["tasks"]
        self.refused.keep(tasks)
        did = False
        for task, info in sorted(tasks.items()):
            if task in self.memory["finished"] or task in self.refused:
                continue
            if info["phase"] == "join" and task not in self.memory["joined"]:
                did |= self._join(task)
            elif info["phase"] == "train" and task in self.memory["joined"]:
                did |= self._train(task)
            elif info["phase"] in OVER:
                did |= self._finish(task)
        # a task this daemon refused is not waited for
        self._open = [t for t, i in tasks.items() if i["phase"] not in OVER and t not in self.refused]
        return did

    def _join(self, task: str) -> bool:
        """Join ``task`` with every hosted account if the policy accepts it (checked before any
        stake is locked); else refuse it once. True if joined."""
        try:
            spec = self._spec(task)
        except (BadTaskSpec, EncodingError) as exc:  # the spec itself is bad: final
            self.refused.add(task, f"{type(exc).__name__}: {exc}")
            return False
        why = self.policy.task_refusal(spec, self.client.query("task", task_id=task))
        if why:
            self.refused.add(task, why)
            return False
        results = self.client.submit(
            [(a, JoinTask(task=task, role=DATA)) for a in self.accounts.values()], check=False
        )
        refused = [r for r in results if not r["ok"] and r["error"] != "AlreadyMember"]
        if len(refused) == len(results):
            self.refused.add(task, f"join_task refused: {refused[0]['error']}: {refused[0]['reason']}")
            return False
        self.memory["joined"].append(task)
        return True

    def _updates(self, task: str, spec: TaskSpec, view: RoundView) -> list[TrainedUpdate]:
        key = (task, view.round)
        if key not in self.trained:
            self.trained = {k: v for k, v in self.trained.items() if k[0] != task}
            ckpt = self._checkpoint(task, spec, view)
            self.trained[key] = self._pool(task, spec).train(
                spec, view.round, ckpt, view.roster, len(view.roster)
            )
        return self.trained[key]

    def _checkpoint(self, task: str, spec: TaskSpec, view: RoundView) -> bytes:
        """The round's checkpoint: rebuilt from the last one and the round's compressed global
        update when the task broadcasts one (a few bytes instead of the model), else downloaded."""
        held = self.checkpoints.get(task)
        if view.patch is not None and held is not None and held[0] == view.patch.get("base"):
            try:
                patch = self.client.get_blob(view.patch["update"])
                ckpt = apply_patch(spec, held[1], patch, param_count(spec), view.checkpoint)
            except (DeaiError, KeyError, TypeError):  # any doubt: the full download below
                ckpt = self.client.get_blob(view.checkpoint)
        else:
            ckpt = self.client.get_blob(view.checkpoint)
        self.checkpoints[task] = (view.checkpoint, ckpt)
        return ckpt

    def _train(self, task: str) -> bool:
        spec = self._spec(task)
        view = self.client.task_round(task)
        if view.phase != Phase.TRAIN or not any(a in self.accounts for a in view.roster):
            return False
        if view.secagg is not None:
            return self._secagg(task, spec, view)
        missing = [a for a in view.roster if a in self.accounts and a not in view.submitted]
        if not missing:
            return False
        updates = [u for u in self._updates(task, spec, view) if u.provider in missing]
        self.client.put_blobs([(u.blob, u.digest) for u in updates])
        results = self.client.call("task.updates", {"statements": [u.statement.to_json() for u in updates]})
        return any(r.get("accepted") for r in results["results"])

    def _secagg(self, task: str, spec: TaskSpec, view: RoundView) -> bool:
        sa, r = view.secagg, view.round
        assert sa is not None  # called only while the round holds a secure aggregation
        pool = self._pool(task, spec)
        key = (task, r, sa["attempt"])
        mine = [a for a in view.roster if a in self.accounts]
        if key not in self.secagg_sent:
            self.secagg_sent.add(key)
            deltas = {u.provider: u.delta for u in self._updates(task, spec, view)}
            out = pool.secagg_start(spec, r, sa, deltas)
            if out:
                self.client.call("task.secagg", {"statements": [s.to_json() for s in out]})
            return True
        inbox = self.client.call("task.inbox", {"task": task, "providers": mine})["inbox"]
        replies = []
        for a, msg in sorted(inbox.items()):
            if msg is None or (key, a, msg["phase"]) in self.secagg_sent:
                continue
            self.secagg_sent.add((key, a, msg["phase"]))
            try:
                replies.append(pool.secagg_handle(spec, r, sa, a, msg))
            except (DeaiError, KeyError, ValueError):
                continue  # this client refuses (or lost its state): it drops out of the round
        if replies:
            self.client.call("task.secagg", {"statements": [s.to_json() for s in replies]})
        return bool(replies)

    def _finish(self, task: str) -> bool:
        """Claim the task's payouts and take the task stake back (refused harmlessly if done)."""
        leave = [(a, LeaveTask(task=task)) for a in self.accounts.values() if task in self.memory["joined"]]
        claim_payouts(self.client, task, self.accounts.values(), extra=leave)
        self.memory["finished"].append(task)
        self.pools.pop(task, None)
        return True
