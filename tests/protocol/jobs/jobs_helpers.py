"""Shared helpers of the jobs tests (a uniquely named module: test directories each have
their own conftest, and two modules named ``conftest`` cannot both be imported by name).

Fixtures for the verified-job tests: a blob store, a ledger with staked executors, and the job
engine's in-process driver (:class:`~deai.protocol.jobs.driver.JobDriver`), named ``coordinator``."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from deai.core.accounts import Account
from deai.core.blobs import BlobStore
from deai.core.tensorio import to_safetensors
from deai.ledger.base import ManualClock
from deai.ledger.config import COMPUTE, NetworkConfig
from deai.ledger.memory import MemoryLedger
from deai.ledger.txs import Mint, Stake
from deai.protocol.jobs import JobConfig, JobDriver, JobSpec
from deai.protocol.jobs.cheaters import make_executor

STAKE = 100_000


@dataclass
class Net:
    ledger: MemoryLedger
    clock: ManualClock
    store: BlobStore
    creator: Account
    executors: dict
    coordinator: JobDriver

    def behaviour(self, address: str) -> str:
        return self.executors[address].behaviour

    def agg_spec(self, seed: int, n: int = 5, d: int = 64, aggregator: str = "mean") -> JobSpec:
        g = torch.Generator().manual_seed(seed)
        inputs = [self.store.put(to_safetensors({"delta": torch.randn(d, generator=g)})) for _ in range(n)]
        return JobSpec("aggregate", tuple(inputs), {"aggregator": aggregator}, seed=seed)


def make_net(tmp_path, behaviours, *, p=1.0, r=3, seed=0, threads=None, rep_step_bps=0, **cheater_kw) -> Net:
    minter = Account.from_seed("jobs-minter", 0)
    clock = ManualClock(0)
    # rep_step_bps=0: draws depend on stake only, so tests see the cheaters drawn again and again.
    creator = Account.from_seed("jobs-creator", seed)  # a network resolver: it resolves its own jobs
    config = NetworkConfig(minter=minter.address, rep_step_bps=rep_step_bps, resolvers=(creator.address,))
    ledger = MemoryLedger(config, clock=clock)
    store = BlobStore(tmp_path / "blobs", fsync=False)
    ledger.send(minter, Mint(to=creator.address, amount=10**12))
    executors = {}
    for i, b in enumerate(behaviours):
        acct = Account.from_seed(f"jobs-executor-{seed}", i)
        ledger.send(minter, Mint(to=acct.address, amount=10 * STAKE))
        ledger.send(acct, Stake(role=COMPUTE, amount=STAKE))
        kw = dict(cheater_kw.get(b, {}))
        kw["threads"] = threads[i % len(threads)] if threads else None
        executors[acct.address] = make_executor(b, acct, store, **kw)
    coord = JobDriver(ledger, clock, store, creator, executors, config=JobConfig(fee=10, r=r, p=p))
    return Net(ledger, clock, store, creator, executors, coord)
