"""The SQLite backend: persistence across reopen, atomic batches, and crash safety under SIGKILL."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from deai.core.accounts import Account
from deai.core.encoding import hash_value
from deai.ledger import COMPUTE, LedgerError, ManualClock, SqliteLedger, txs

MINTER = Account.from_seed("ledger-tests", 0)


def test_reopen_restores_everything(tmp_path, make_config):
    path = tmp_path / "l.sqlite"
    clock = ManualClock(5_000)
    ledger = SqliteLedger(path, make_config(), clock=clock)
    a = Account.from_seed("reopen", 1)
    ledger.send(MINTER, txs.Mint(to=a.address, amount=5_000))
    ledger.send(a, txs.Stake(role=COMPUTE, amount=2_000))
    ledger.send(a, txs.CreateTask(task=hash_value("t"), budget=500, params=hash_value("p")))
    snapshot = (
        ledger.state_root(),
        ledger.head(),
        ledger.events(),
        ledger.history(a.address),
        ledger.task(hash_value("t")),
    )
    ledger.close()
    with pytest.raises(LedgerError, match="another network"):
        SqliteLedger(path, make_config(network="other"))
    again = SqliteLedger(path)
    assert (
        again.state_root(),
        again.head(),
        again.events(),
        again.history(a.address),
        again.task(hash_value("t")),
    ) == snapshot
    assert again.nonce(a.address) == 2 and again.stake(a.address, COMPUTE) == 2_000
    again.send(a, txs.Transfer(to=MINTER.address, amount=1))
    assert again.verify().ok
    rows = dict(again._db.execute("SELECT address, amount FROM balances").fetchall())
    assert rows[a.address] == 5_000 - 2_000 - 500 - 1
    again.close()
    with pytest.raises(LedgerError, match="needs a network config"):
        SqliteLedger(tmp_path / "empty.sqlite")


def test_failed_write_rolls_back_memory(tmp_path, make_config):
    class Flaky(SqliteLedger):
        fail = True

        def _persist(self, *args):
            if self.fail:
                self.fail = False
                raise OSError("disk full")
            return super()._persist(*args)

    ledger = Flaky(tmp_path / "f.sqlite", make_config())
    root, head = ledger.state_root(), ledger.head()
    with pytest.raises(OSError):
        ledger.send(MINTER, txs.Mint(to=MINTER.address, amount=10))
    assert ledger.state_root() == root and ledger.head() == head and ledger.nonce(MINTER.address) == 0
    ledger.send(MINTER, txs.Mint(to=MINTER.address, amount=10))
    assert ledger.balance(MINTER.address) == 10 and ledger.verify().ok and ledger.events()[0].seq == 0
    ledger.close()


def test_second_writer_is_refused(tmp_path, make_config):
    path = tmp_path / "w.sqlite"
    one, two = SqliteLedger(path, make_config()), SqliteLedger(path)
    one.send(MINTER, txs.Mint(to=MINTER.address, amount=10))
    with pytest.raises(LedgerError, match="another process"):
        two.send(MINTER, txs.Mint(to=MINTER.address, amount=10))
    assert two.state_root() != one.state_root() or two.head().height == 0
    one.close()
    two.close()


WRITER = r"""
import random, sys
from deai.core.accounts import Account
from deai.core.encoding import hash_value
from deai.ledger import COMPUTE, NetworkConfig, SqliteLedger, SignedTx, txs, DATA, HOST

path, seed = sys.argv[1], int(sys.argv[2])
minter = Account.from_seed("ledger-tests", 0)
users = [Account.from_seed("crash", i) for i in range(8)]
config = NetworkConfig(minter=minter.address, network="crash", min_stake={DATA: 1, COMPUTE: 10, HOST: 10},
                       stake_fee_ratio_bps=0)
ledger = SqliteLedger(path, config)
rng = random.Random(seed)
nonces = {}
def sign(acct, tx):
    n = nonces.get(acct.address, ledger.nonce(acct.address))
    nonces[acct.address] = n + 1
    return SignedTx.create(acct, tx, nonce=n, network="crash")
while True:
    batch = []
    for _ in range(rng.randint(1, 40)):
        u, v = rng.choice(users), rng.choice(users)
        kind = rng.random()
        if kind < 0.2:
            batch.append(sign(minter, txs.Mint(to=u.address, amount=rng.randint(1, 1000))))
        elif kind < 0.7:
            batch.append(sign(u, txs.Transfer(to=v.address, amount=rng.randint(1, 300))))
        elif kind < 0.85:
            batch.append(sign(u, txs.Stake(role=COMPUTE, amount=rng.randint(10, 100))))
        else:
            batch.append(sign(u, txs.CreateTask(task=hash_value(rng.random()), budget=rng.randint(0, 50),
                                                params=hash_value("p"))))
    results = ledger.submit_many(batch)
    for stx, r in zip(batch, results):
        if not hasattr(r, "height"):   # refused: its nonce is free again
            nonces.pop(stx.sender, None)
    heights = [r.height for r in results if hasattr(r, "height")]
    if heights:
        print("acked", max(heights), flush=True)
"""


def _crash_cycles(tmp_path, cycles: int) -> None:
    path = tmp_path / "crash.sqlite"
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    rng = random.Random(7)
    acked = -1
    for cycle in range(cycles):
        proc = subprocess.Popen(
            [sys.executable, str(script), str(path), str(cycle)], stdout=subprocess.PIPE, text=True
        )
        try:
            first = proc.stdout.readline()  # wait until it is writing
            assert first.startswith("acked"), first
            time.sleep(rng.uniform(0.05, 0.6))
            os.kill(proc.pid, signal.SIGKILL)
            lines = [first, *proc.stdout.read().splitlines()]
        finally:
            proc.kill()
            proc.wait()
        cycle_acked = max(int(line.split()[1]) for line in lines if line.startswith("acked"))
        assert cycle_acked > acked
        acked = cycle_acked
        ledger = SqliteLedger(path)
        try:
            # every acknowledged transaction survived; nothing half-written is visible
            assert ledger.head().height >= acked + 1
            report = ledger.verify()
            assert report.ok, report.problem
            ledger.check_invariants()
        finally:
            ledger.close()


def test_crash_safety_under_sigkill(tmp_path):
    _crash_cycles(tmp_path, cycles=3)


@pytest.mark.slow
def test_crash_safety_many_kills(tmp_path):
    _crash_cycles(tmp_path, cycles=3 if os.environ.get("DEAI_SMALL") == "1" else 20)


def test_verify_a_ledger_another_process_is_writing(tmp_path, make_config):
    """An auditor's handle verifies the file as stored, even after the writer moved on."""
    path = tmp_path / "live.sqlite"
    writer = SqliteLedger(path, make_config())
    writer.send(MINTER, txs.Mint(to=MINTER.address, amount=10))
    auditor = SqliteLedger(path)
    writer.send(MINTER, txs.Mint(to=MINTER.address, amount=10))
    report = auditor.verify()
    assert report.ok and report.entries == 2 and report.head == writer.head().hash
    writer.close()
    auditor.close()
