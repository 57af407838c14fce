"""Fixtures of the ledger conformance suite.

Every test that takes ``ledger_factory`` (or ``net``) runs once per backend: ``memory``, ``sqlite``
and ``evm`` (the ledger contract on an in-process py-evm chain, driven by the test's clock).

The contract does not have every area of the state machine yet: tests of an area it lacks are
skipped on ``evm`` by ``EVM_MISSING`` (module or test name -> the area), with the reason printed,
so the list shrinks as the contract grows (docs/ledger.md, "EVM backend").
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from deai.core.accounts import Account
from deai.ledger import (
    COMPUTE,
    DATA,
    HOST,
    Ledger,
    ManualClock,
    MemoryLedger,
    NetworkConfig,
    Receipt,
    SqliteLedger,
    txs,
)

# "anvil": the same contract on a real anvil process (one per test), under -m slow
BACKENDS = ["memory", "sqlite", "evm", pytest.param("anvil", marks=pytest.mark.slow)]
EVM_MISSING: dict[str, str] = {}
# tests of the local backends' hash-linked log (entries tampered in SQLite/memory): on the EVM
# backend the chain's blocks are the log; tests/ledger/test_ledger_evm.py covers its verify
EVM_NOT_APPLICABLE = {
    "test_ledger_verify.py": "the local hash-linked log",
    "test_ledger_stateful.py": "the local hash-linked log (its teardown tampers log entries)",
}

ACCOUNTS = [Account.from_seed("ledger-tests", i) for i in range(12)]
MINTER = ACCOUNTS[0]
RESOLVER = ACCOUNTS[10]  # a network resolver (genesis ``resolvers``), like a hub serving inference


def test_config(**overrides) -> NetworkConfig:
    base = {
        "minter": MINTER.address,
        "network": "deai-test",
        "min_stake": {DATA: 100, COMPUTE: 1_000, HOST: 1_000},
        "unbonding_delay_ms": 10_000,
        "stake_fee_ratio_bps": 10_000,
        "resolve_grace_ms": 5_000,
        "resolvers": (RESOLVER.address,),
    }
    return NetworkConfig(**{**base, **overrides})


test_config.__test__ = False  # not a test


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    if request.param in ("evm", "anvil"):
        area = EVM_MISSING.get(request.node.originalname) or EVM_MISSING.get(request.path.name)
        if area:
            pytest.skip(f"the EVM ledger contract has no {area} yet")
        other = EVM_NOT_APPLICABLE.get(request.path.name)
        if other:
            pytest.skip(f"not an EVM test: {other}")
    return request.param


@pytest.fixture
def anvil_url(tmp_path):
    """The RPC URL of an anvil process for this test (skips when anvil is not installed)."""
    import os

    from deai.ledger.evm.node import ANVIL_INSTALL, AnvilNode, find_anvil

    if find_anvil() is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"anvil is missing on CI; {ANVIL_INSTALL}")
        pytest.skip(f"anvil is not installed; {ANVIL_INSTALL}")
    with AnvilNode(tmp_path / "anvil") as node:
        yield node.url


@pytest.fixture
def ledger_factory(backend, tmp_path, request) -> Callable[..., Ledger]:
    """``make(config=None, clock=None) -> Ledger`` of the parameterized backend, closed afterwards."""
    made: list[Ledger] = []

    def make(config: NetworkConfig | None = None, clock=None) -> Ledger:
        config = config or test_config()
        if backend == "memory":
            ledger: Ledger = MemoryLedger(config, clock=clock)
        elif backend == "evm":
            from deai.ledger.evm.backend import EvmLedger
            from deai.ledger.evm.node import tester_chain

            ledger = EvmLedger(tester_chain(), config, clock=clock or ManualClock(1_000_000))
        elif backend == "anvil":
            from deai.ledger.evm.backend import EvmLedger

            url = request.getfixturevalue("anvil_url")
            ledger = EvmLedger(url, config, clock=clock or ManualClock(1_000_000))
        else:
            ledger = SqliteLedger(
                tmp_path / f"ledger{len(made)}.sqlite", config, clock=clock, synchronous="NORMAL"
            )
        made.append(ledger)
        return ledger

    yield make
    for ledger in made:
        ledger.close()


@dataclass
class Net:
    """A ledger with a manual clock and a set of deterministic accounts."""

    ledger: Ledger
    clock: ManualClock
    accounts: list[Account] = field(default_factory=lambda: ACCOUNTS)

    @property
    def minter(self) -> Account:
        return self.accounts[0]

    def send(self, account: Account, tx) -> Receipt:
        return self.ledger.send(account, tx)

    def fund(self, account: Account, amount: int) -> None:
        self.send(self.minter, txs.Mint(to=account.address, amount=amount))

    def staked(self, account: Account, role: str, amount: int, extra: int = 0) -> None:
        self.fund(account, amount + extra)
        self.send(account, txs.Stake(role=role, amount=amount))


@pytest.fixture
def net(ledger_factory) -> Net:
    clock = ManualClock(1_000_000)
    return Net(ledger_factory(clock=clock), clock)


def tamper_entry(ledger: Ledger, seq: int, **changes) -> None:
    """Overwrite stored fields of log entry ``seq`` behind the ledger's back (tests of verify)."""
    if isinstance(ledger, MemoryLedger):
        ledger.tamper(seq, **changes)
        return
    db = sqlite3.connect(ledger.path)
    for column, value in changes.items():
        db.execute(f"UPDATE log SET {column} = ? WHERE seq = ?", (value, seq))
    db.commit()
    db.close()


@pytest.fixture
def tamper() -> Callable[..., None]:
    """``tamper(ledger, seq, tx=..., hash=..., ...)``: change a stored log entry."""
    return tamper_entry


@pytest.fixture
def make_config() -> Callable[..., NetworkConfig]:
    """``make_config(**overrides)``: the suite's network config with some fields changed."""
    return test_config
