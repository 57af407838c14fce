"""A scenario turned into a concrete network: parties, their data, their behaviours and the task.

:class:`NetworkPlan` reads a validated :class:`~deai.sim.scenario.Scenario` (the one scenario -> task
path: the node layer below knows nothing of scenarios) and fixes everything a run needs, deterministically
from the scenario's seed: the dataset splits and the partition, the accounts (development keys from
the seed), which accounts are adversarial, and the task bundle. Then either transport runs it:

- :meth:`NetworkPlan.memory` builds a :class:`~deai.node.launch.inprocess.LocalNetwork` (one process);
- :meth:`NetworkPlan.processes` starts a :class:`~deai.node.launch.processes.ProcessNetwork` (hub and
  daemons as processes on loopback; ``deai up``).

Both use the same task bundle, so the same scenario gives the same task id and, for the same
grouping of providers into daemons, the same checkpoints.

Data: the providers' ``datasets`` are **raw** (as a real provider holds its file); the task spec
declares the workload's preprocessing, which every provider applies itself
(:meth:`deai.protocol.task.provider.ProviderPool.model_data`). The creator's own data -- the public
validation part, the hidden scoring sets and the test set of the report -- is put through the same
preprocessing here, before it is published or evaluated on: ``splits`` is in model space.

Join window: the task starts when every provider joined, or -- with ``task.windows.join_grace_ms``
(10 s by default) -- once ``min_providers`` joined and nobody else joined for that long, so a
network with fewer live providers than ``network.data_providers`` does not wait out ``join_ms``.
Over the in-memory transport the ledger clock only advances when every party is idle, so the same
seed gives the same members and the same result. Over HTTP the grace is wall time: ``deai up`` and
the HTTP run wait until every provider daemon staked (:meth:`NetworkPlan.wait_staked`, i.e. it polls
the hub) before submitting; a daemon started later than the grace after the others misses the task.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import torch

from deai.core.accounts import Account
from deai.core.encoding import sha256_hex
from deai.learn.data import Dataset, Splits
from deai.node.user.submit import TaskBundle, make_task
from deai.protocol.task.model import data_bytes
from deai.protocol.task.spec import DelegatedSettings, DPSettings, Windows
from deai.sim.scenario import Scenario
from deai.sim.workload import prepare_workload

__all__ = ["MIN_SCORING_SET", "NetworkPlan", "hold_out"]

FUNDS = 1_000_000
MIN_SCORING_SET = 32  # samples: fewer make a round's scores mostly noise


def hold_out(val: Dataset, share: float, rounds: int, seed: int) -> tuple[Dataset, list[Dataset]]:
    """Split the validation data into its public part and the hidden scoring sets: ``share`` of it
    held back, cut into one set per round, or fewer (each of at least :data:`MIN_SCORING_SET`
    samples, reused round after round once revealed) when the data is short."""
    hidden = int(len(val) * share)
    if hidden < MIN_SCORING_SET or len(val) - hidden < 1:
        return val, []
    order = torch.randperm(len(val), generator=torch.Generator().manual_seed(seed)).tolist()
    k = max(1, min(rounds, hidden // MIN_SCORING_SET))
    size = hidden // k
    sets = [val.subset(order[i * size : (i + 1) * size]) for i in range(k)]
    return val.subset(order[k * size :]), sets


def _dp(scenario: Scenario, n: int) -> DPSettings | None:
    dp = scenario.task.dp
    if dp is None:
        return None
    if dp.mode == "dpsgd":
        raise ValueError("task.dp.mode 'dpsgd' is not supported by the network yet; use 'local' or 'central'")
    z = dp.noise_multiplier
    if z is None:
        from deai.learn.privacy.accountant import noise_multiplier_for

        assert dp.epsilon is not None  # the scenario holds exactly one of the two
        z = noise_multiplier_for(dp.epsilon, dp.delta, 1.0, scenario.task.rounds)
    mode = "distributed" if scenario.task.secure_aggregation and dp.mode == "central" else dp.mode
    return DPSettings(mode=mode, clip=dp.clip, noise_multiplier=float(z), delta=dp.delta)


def _model_kwargs(scenario: Scenario) -> dict:
    """The model's options; a model on a pretrained base gets the local base's weight digest, which
    every party building the model must match."""
    options = dict(scenario.model.options)
    if isinstance(options.get("base"), str) and "digest" not in options:
        from deai.learn.pretrained import base_digest

        options["digest"] = base_digest(options["base"]).removeprefix("0x")
    return options


@dataclass
class NetworkPlan:
    seed: int
    splits: Splits
    providers: list[Account]
    computes: list[Account]
    hosts: list[Account]
    creator: Account
    datasets: dict[str, Dataset]
    bundle: TaskBundle
    behaviours: dict[str, str] = field(default_factory=dict)
    roles: dict[str, str] = field(default_factory=dict)
    tag: str = "net"
    policy: dict[str, int] = field(default_factory=dict)  # the daemons' JoinPolicy fields
    tokenizer: object | None = None  # text tasks: the tokenizer of the windows (exported with the model)
    raw_splits: Splits | None = None  # the splits before the task's preprocessing (what a party holds)
    train_data: bytes | None = None  # delegated training: the creator's training data blob (public)

    @classmethod
    def from_scenario(cls, scenario: Scenario, *, windows: Windows | None = None) -> NetworkPlan:
        seed, net, t = scenario.seed, scenario.network, scenario.task
        work = prepare_workload(scenario)
        prep = work.preprocessing
        splits = Splits(*(prep.apply(d) for d in (work.splits.train, work.splits.val, work.splits.test)))
        tag = f"s{seed}"
        providers = [Account.from_seed(f"{tag}p", i) for i in range(net.data_providers)]
        computes = [Account.from_seed(f"{tag}c", i) for i in range(net.compute_providers)]
        hosts = [Account.from_seed(f"{tag}h", i) for i in range(net.hosts)]
        creator = Account.from_seed(f"{tag}creator", 0)
        datasets = {a.address: work.parts[i] for i, a in enumerate(providers)}
        behaviours, roles = {}, {}
        pools = {"data_provider": providers, "compute_provider": computes, "host": hosts}
        used = {k: 0 for k in pools}
        for adv in scenario.adversaries:  # adversaries take the last accounts of their role
            pool = pools[adv.role]
            for _ in range(adv.count):
                used[adv.role] += 1
                behaviours[pool[-used[adv.role]].address] = adv.behaviour
        for role, pool in pools.items():
            for a in pool:
                roles[a.address] = role
        n = net.data_providers
        minimum = t.min_providers or max(1, min(n, math.ceil(n / 2)))
        windows = windows or Windows(**dict(t.windows))
        f = sum(a.count for a in scenario.adversaries if a.role == "data_provider")
        public, hidden = hold_out(splits.val, t.scoring_holdout, t.rounds, seed)
        train_data, delegated = None, None
        if t.training == "delegated":  # the creator's data is the training split, trained on rented compute
            d = t.delegated
            train_data = data_bytes(splits.train)
            delegated = DelegatedSettings(
                sha256_hex(train_data), d.steps, d.commit_every, min(d.r, net.compute_providers), d.p
            )
        bundle = make_task(
            public,
            scoring_sets=hidden,
            model_seed=seed,
            model=scenario.model.name,
            model_kwargs=_model_kwargs(scenario),
            rounds=t.rounds,
            local_epochs=float(t.local_epochs),
            local_steps=t.local_steps,
            lr=t.lr,
            batch_size=t.batch_size,
            optimizer=t.optimizer,
            momentum=t.momentum,
            provider_momentum=t.provider_momentum,
            weight_decay=t.weight_decay,
            grad_clip=t.grad_clip,
            schedule=t.schedule,
            warmup_steps=t.warmup_steps,
            accumulate=t.accumulate,
            loss=t.loss,
            strategy=t.strategy,
            strategy_kwargs=dict(t.strategy_options),
            aggregator=t.aggregator,
            scoring=t.scoring,
            scoring_options=dict(t.scoring_options),
            score_samples=t.score_samples,
            f=f,
            dp=_dp(scenario, n),
            secure_aggregation=t.secure_aggregation,
            compression=t.compression,
            global_compression=t.global_compression,
            bucket_size=max(2, min(n, 3)) if t.secure_aggregation else 3,
            redundancy=min(t.verification.redundancy, max(1, net.compute_providers)),
            sample_rate=t.verification.sample_rate,
            budget=t.budget,
            min_providers=minimum,
            max_providers=min(n, t.max_providers or n),
            windows=windows,
            seed=seed,
            preprocessing=prep,
            delegated=delegated,
        )
        given = getattr(scenario, "policy", None)
        policy = {k: int(v) for k, v in dict(given).items() if v is not None} if given is not None else {}
        return cls(
            seed,
            splits,
            providers,
            computes,
            hosts,
            creator,
            datasets,
            bundle,
            behaviours,
            roles,
            tag,
            policy,
            work.tokenizer,
            work.splits,
            train_data,
        )

    def everyone(self) -> list[Account]:
        return [*self.providers, *self.computes, *self.hosts, self.creator]

    def wait_staked(self, client, timeout: float = 120.0) -> bool:
        """Wait until every data provider holds its stake: its daemon finished starting and polls
        the hub, so it joins a task within a poll once submitted (what the join grace assumes of
        processes spawned just before the task). False if some did not within ``timeout``."""
        import time

        from deai.ledger.config import DATA

        least = client.info()["config"]["min_stake"][DATA]
        end, left = time.monotonic() + timeout, [a.address for a in self.providers]
        while left and time.monotonic() < end:
            while left and client.query("stake", address=left[0], role=DATA) >= least:
                left.pop(0)
            if left:
                time.sleep(0.2)
        return not left

    # -- in one process -----------------------------------------------------------------------------------

    def publish_data(self, client) -> None:
        """The creator's public data the task needs besides the spec's own blobs: the training data
        of a delegated task (a no-op otherwise). ``client`` signs as the creator."""
        if self.train_data is not None:
            client.put_blob(self.train_data, expected=sha256_hex(self.train_data))

    def memory(self, root: str | Path, *, ledger: str = "memory"):
        """A :class:`LocalNetwork` with every party funded and its daemons added (task not submitted);
        ``ledger``: ``memory`` or ``evm`` (the contracts on an in-process py-evm chain)."""
        from deai.node.launch.inprocess import LocalNetwork

        net = LocalNetwork(root, network=f"deai-{self.tag}", seed=self.seed, ledger=ledger)
        net.fund([a.address for a in self.everyone()] + [net.hub_account.address], FUNDS)
        self.publish_data(net.client(self.creator))
        net.add_daemon(
            "data",
            {"data_provider": self.providers},
            behaviours=self.behaviours,
            options={"datasets": self.datasets, "policy": self.policy},
        )
        net.add_daemon(
            "compute",
            {"compute_provider": self.computes},
            behaviours=self.behaviours,
            options={"policy": self.policy},
        )
        return net

    # -- as processes -------------------------------------------------------------------------------------

    def processes(
        self,
        root: str | Path,
        *,
        data_processes: int = 2,
        port: int = 0,
        with_hosts: bool = True,
        ledger: str = "sqlite",
        rpc: str | None = None,
    ):
        """Start a hub and daemons on loopback: the data providers split over ``data_processes``
        daemons, one daemon per compute provider (so each can be killed alone), one per host.
        ``ledger``/``rpc``: the ledger's backend (:class:`~deai.node.launch.processes.ProcessNetwork`)."""
        from deai.node.launch.processes import ProcessNetwork
        from deai.node.participant.roles import ROLES

        net = ProcessNetwork(root, network=f"deai-{self.tag}", seed=self.seed, ledger=ledger, rpc=rpc)
        net.start_hub(port=port)
        net.fund([a.address for a in self.everyone()] + [net.hub_account.address], FUNDS)
        self.publish_data(net.client(self.creator))
        k = max(1, min(data_processes, len(self.providers)))
        size = math.ceil(len(self.providers) / k)
        for g in range(k):
            lo, hi = g * size, min(len(self.providers), (g + 1) * size) - 1
            if lo > hi:
                continue
            group = self.providers[lo : hi + 1]
            net.start_node(
                f"data{g}",
                ["data_provider"],
                [f"seed:{self.tag}p:{lo}-{hi}"],
                data={a.address: self.datasets[a.address] for a in group},
                behaviours={
                    a.address: self.behaviours[a.address] for a in group if a.address in self.behaviours
                },
                policy=self.policy,
            )
        for i, a in enumerate(self.computes):
            b = {a.address: self.behaviours[a.address]} if a.address in self.behaviours else {}
            net.start_node(
                f"compute{i}",
                ["compute_provider"],
                [f"seed:{self.tag}c:{i}"],
                behaviours=b,
                policy=self.policy,
            )
        if with_hosts and self.hosts:
            try:
                ROLES.get("host")
            except (ImportError, ValueError):
                return net  # hosting is not installed in this build: no host daemons
            for i, a in enumerate(self.hosts):
                b = {a.address: self.behaviours[a.address]} if a.address in self.behaviours else {}
                net.start_node(
                    f"host{i}", ["host"], [f"seed:{self.tag}h:{i}"], behaviours=b, policy=self.policy
                )
        return net
