"""Conformance: ``verify`` replays the log and finds every kind of tampering."""

from __future__ import annotations

import json
import sqlite3

import pytest

from deai.core.encoding import hash_value
from deai.ledger import COMPUTE, SqliteLedger, replay, txs
from deai.ledger.log import entry_hash


@pytest.fixture
def busy(net):
    a, b = net.accounts[1], net.accounts[2]
    net.fund(a, 50_000)
    for i in range(5):
        net.send(a, txs.Transfer(to=b.address, amount=100 + i))
    net.staked(b, COMPUTE, 1_000)
    net.send(a, txs.CreateTask(task=hash_value("t"), budget=1_000, params=hash_value("p")))
    assert net.ledger.verify().ok
    return net


def test_clean_ledger_verifies_and_replays_to_the_same_root(busy):
    ledger = busy.ledger
    report = ledger.verify()
    assert report.ok and report.entries == ledger.head().height == 9
    assert (
        report.state_root == report.stored_root == ledger.state_root() and report.head == ledger.head().hash
    )
    state, head, count = replay(ledger.config, ledger.log())
    assert state.root() == ledger.state_root() and head == ledger.head().hash and count == 9


def test_changed_transaction_bytes(busy, tamper):
    entry = list(busy.ledger.log())[3]
    raw = json.loads(entry.tx)
    raw["body"]["amount"] += 1
    forged = json.dumps(raw, separators=(",", ":"), sort_keys=True).encode()
    tamper(busy.ledger, 3, tx=forged)
    report = busy.ledger.verify()
    assert not report.ok and "log entry 3" in report.problem and "hash" in report.problem


def test_rewritten_chain_still_fails_the_signature(busy, tamper):
    """An operator who changes a transaction and recomputes every later hash is still caught."""
    ledger = busy.ledger
    entries = list(ledger.log())
    raw = json.loads(entries[3].tx)
    raw["body"]["amount"] += 1
    forged = json.dumps(raw, separators=(",", ":"), sort_keys=True).encode()
    prev = entries[2].hash
    for e in entries[3:]:
        tx = forged if e.seq == 3 else e.tx
        h = entry_hash(prev, e.seq, e.time, tx, e.signature, e.events_hash)
        tamper(ledger, e.seq, tx=tx, prev_hash=prev, hash=h)
        prev = h
    report = ledger.verify()
    assert not report.ok and "log entry 3" in report.problem and "BadTxSignature" in report.problem


def test_changed_events_hash_or_link(busy, tamper):
    entries = list(busy.ledger.log())
    e = entries[4]
    fake = hash_value("not the events")
    tamper(
        busy.ledger, 4, events_hash=fake, hash=entry_hash(e.prev_hash, e.seq, e.time, e.tx, e.signature, fake)
    )
    report = busy.ledger.verify()
    assert not report.ok and "log entry 4" in report.problem


def test_broken_link(busy, tamper):
    tamper(busy.ledger, 6, prev_hash=hash_value("elsewhere"))
    report = busy.ledger.verify()
    assert not report.ok and "log entry 6" in report.problem and "link" in report.problem


def test_sqlite_state_and_event_tables_are_checked(tmp_path, make_config):
    from deai.core.accounts import Account

    minter = Account.from_seed("ledger-tests", 0)
    path = tmp_path / "l.sqlite"
    ledger = SqliteLedger(path, make_config())
    ledger.send(minter, txs.Mint(to=minter.address, amount=10))
    ledger.send(minter, txs.Transfer(to=Account.from_seed("x", 1).address, amount=3))
    ledger.close()
    db = sqlite3.connect(path)
    db.execute("UPDATE state SET value = '1000' WHERE tbl = 'balances' AND key = ?", (minter.address,))
    db.commit()
    ledger = SqliteLedger(path)
    report = ledger.verify()
    assert not report.ok and "stored state" in report.problem
    ledger.close()
    db.execute("UPDATE state SET value = '7' WHERE tbl = 'balances' AND key = ?", (minter.address,))
    db.execute("UPDATE events SET data = '{\"amount\":99}' WHERE seq = 0")
    db.commit()
    db.close()
    ledger = SqliteLedger(path)
    report = ledger.verify()
    assert not report.ok and "event stream" in report.problem
    ledger.close()
