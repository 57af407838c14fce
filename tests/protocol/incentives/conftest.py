"""Fixtures for the incentive tests: a ledger with a funded coordinator, data providers and executors."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from deai.core.accounts import Account
from deai.core.encoding import sha256_hex
from deai.ledger.base import ManualClock
from deai.ledger.config import COMPUTE, DATA, HOST, NetworkConfig
from deai.ledger.memory import MemoryLedger
from deai.ledger.txs import CreateTask, JoinTask, Mint, Stake


@dataclass
class World:
    ledger: MemoryLedger
    clock: ManualClock
    minter: Account
    coordinator: Account
    data: list[Account]
    compute: list[Account]
    hosts: list[Account]
    users: list[Account]

    def task(self, name: str, budget: int, provider_stake: int = 500) -> str:
        task = "0x" + sha256_hex(name.encode())
        self.ledger.send(
            self.coordinator,
            CreateTask(task=task, budget=budget, params="0x" + "11" * 32, provider_stake=provider_stake),
        )
        for a in self.data:
            self.ledger.send(a, JoinTask(task=task, role=DATA))
        return task


def make_world(n_data: int = 6, n_compute: int = 5, tag: str = "inc") -> World:
    minter = Account.from_seed(f"{tag}-minter", 0)
    clock = ManualClock(0)
    ledger = MemoryLedger(NetworkConfig(minter=minter.address, rep_step_bps=0), clock=clock)
    coordinator = Account.from_seed(f"{tag}-coord", 0)
    ledger.send(minter, Mint(to=coordinator.address, amount=10**9))
    data = [Account.from_seed(f"{tag}-data", i) for i in range(n_data)]
    compute = [Account.from_seed(f"{tag}-compute", i) for i in range(n_compute)]
    hosts = [Account.from_seed(f"{tag}-host", i) for i in range(2)]
    users = [Account.from_seed(f"{tag}-user", i) for i in range(2)]
    for a in data:
        ledger.send(minter, Mint(to=a.address, amount=10_000))
        ledger.send(a, Stake(role=DATA, amount=100))
    for a in compute:
        ledger.send(minter, Mint(to=a.address, amount=1_000_000))
        ledger.send(a, Stake(role=COMPUTE, amount=100_000))
    for a in hosts:
        ledger.send(minter, Mint(to=a.address, amount=10_000))
        ledger.send(a, Stake(role=HOST, amount=1_000))
    for a in users:
        ledger.send(minter, Mint(to=a.address, amount=1_000_000))
    return World(ledger, clock, minter, coordinator, data, compute, hosts, users)


@pytest.fixture
def world() -> World:
    return make_world()
