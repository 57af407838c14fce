"""Finding 9: a hub must refuse to serve a ledger file edited behind its back; finding 10: the
``ledger.entries`` read is a range read.

The attacker here can write the hub's ledger file (not its key): it edits a balance row or an
event, rewrites the mint and recomputes the chain's hashes, truncates the log (rewinding the state
to match, as a replay of the shorter log gives), deletes the signed checkpoint or re-signs it with
its own key. Each is refused at open with one line naming the fault; an untouched ledger, also one
killed mid-write, reopens and keeps its funds.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deai.core.accounts import Account
from deai.core.blobs import BlobStore
from deai.ledger import MemoryLedger, NetworkConfig, SqliteLedger, txs
from deai.ledger.errors import LedgerCorrupted
from deai.ledger.log import entry_hash, replay
from deai.net.memory import MemoryTransport
from deai.node.hub.kv import KV
from deai.node.hub.server import Hub
from deai.node.participant.client import HubClient

NET = "tamper"
MINTER = Account.from_seed("tamper-minter", 0)
HUB = Account.from_seed("tamper-hub", 0)  # the operator: `--account seed:tamper-hub:0`
ATTACKER = Account.from_seed("tamper-attacker", 0)
USERS = [Account.from_seed("tamper-user", i) for i in range(3)]
CONFIG = NetworkConfig(minter=MINTER.address, network=NET)
MINTED = 30_000


def build(path) -> tuple[str, dict[str, int]]:
    """A hub's ledger with mints and transfers, closed; returns its state root and supply."""
    ledger = SqliteLedger(path, CONFIG, operator=HUB)
    ledger.submit_many(
        [ledger.sign(MINTER, txs.Mint(to=u.address, amount=10_000), nonce=i) for i, u in enumerate(USERS)]
    )
    for i in range(6):
        ledger.send(USERS[i % 3], txs.Transfer(to=USERS[(i + 1) % 3].address, amount=100 + i))
    root, supply = ledger.state_root(), ledger.check_invariants()
    assert supply["minted"] == MINTED
    ledger.close()
    return root, supply


@pytest.fixture
def built(tmp_path):
    path = tmp_path / "hub" / "ledger.sqlite"
    root, supply = build(path)
    return path, root, supply


def refused(path, match: str) -> str:
    with pytest.raises(LedgerCorrupted, match=match) as info:
        SqliteLedger(path, operator=HUB)
    message = str(info.value)
    assert "\n" not in message and "deai ledger verify" in message and str(path) in message
    return message


def edit(path, *statements: tuple[str, tuple]) -> None:
    db = sqlite3.connect(path)
    for sql, args in statements:
        db.execute(sql, args)
    db.commit()
    db.close()


def rechain(path, start: int = 0) -> None:
    """Recompute every entry hash from ``start`` on, as an attacker who edited an entry would."""
    db = sqlite3.connect(path)
    rows = db.execute(
        "SELECT seq, prev_hash, time, tx, signature, events_hash FROM log ORDER BY seq"
    ).fetchall()
    prev = (
        CONFIG.genesis_hash
        if start == 0
        else db.execute("SELECT hash FROM log WHERE seq = ?", (start - 1,)).fetchone()[0]
    )
    for seq, _, t, tx, sig, ev in rows[start:]:
        h = entry_hash(prev, seq, t, bytes(tx), bytes(sig), ev)
        db.execute("UPDATE log SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, h, seq))
        prev = h
    db.commit()
    db.close()


def test_untampered_ledger_reopens_and_keeps_signing(built):
    path, root, supply = built
    with SqliteLedger(path, operator=HUB) as ledger:
        assert ledger.state_root() == root and ledger.check_invariants() == supply
        ledger.send(USERS[0], txs.Transfer(to=USERS[1].address, amount=1))
        assert ledger.checkpoint_record().height == ledger.head().height == 10
    with SqliteLedger(path, operator=HUB) as ledger:  # the checkpoint followed the batch
        assert ledger.verify().ok and ledger.check_invariants()["minted"] == MINTED
    with SqliteLedger(path) as auditor:  # without the key: checked against the stored signer
        assert auditor.head().height == 10


def test_edited_balance_is_refused(built):
    path, _, _ = built
    edit(path, ("UPDATE state SET value = '999999' WHERE tbl = 'balances' AND key = ?", (USERS[0].address,)))
    refused(path, "state tables differ from the signed checkpoint")
    with pytest.raises(LedgerCorrupted, match="state tables differ"):
        SqliteLedger(path)  # an auditor without the key refuses it too


def test_edited_event_is_refused(built):
    path, _, _ = built
    edit(
        path,
        (
            "UPDATE events SET data = ? WHERE seq = 0",
            (json.dumps({"to": ATTACKER.address, "amount": 10_000}),),
        ),
    )
    refused(path, "event table differs")


def test_rewritten_mint_with_recomputed_hashes_is_refused(built):
    path, _, _ = built
    db = sqlite3.connect(path)
    tx = json.loads(db.execute("SELECT tx FROM log WHERE seq = 0").fetchone()[0])
    db.close()
    tx["body"]["to"], tx["body"]["amount"] = ATTACKER.address, 10**9
    forged = json.dumps(tx, sort_keys=True, separators=(",", ":")).encode()
    edit(path, ("UPDATE log SET tx = ?, sender = ? WHERE seq = 0", (forged, MINTER.address)))
    rechain(path)  # the chain links again from genesis: only the signed head tells
    refused(path, "log entry 8 differs from the checkpoint: the log was rewritten")


def test_truncated_log_with_rewound_state_is_refused(built):
    path, _, _ = built
    keep = 4
    with SqliteLedger(path) as ledger:  # the attacker replays the shorter log to rewind the state
        state, _, _ = replay(CONFIG, list(ledger.log())[:keep])
    rows = [
        (t, k, json.dumps(v, sort_keys=True, separators=(",", ":")))
        for t, r in state.tables.items()
        for k, v in r.items()
    ]
    db = sqlite3.connect(path)
    db.execute("DELETE FROM log WHERE seq >= ?", (keep,))
    db.execute("DELETE FROM events WHERE height >= ?", (keep,))
    db.execute("DELETE FROM state")
    db.executemany("INSERT INTO state VALUES (?, ?, ?)", rows)
    db.commit()
    db.close()
    with SqliteLedger(path, audit=True) as ledger:  # a full replay finds nothing wrong with it...
        assert ledger.head().height == keep and ledger.verify().problem.endswith("entries were removed")
    refused(path, "log ends after 4 entries but the checkpoint is at 9")  # ...the checkpoint does


def test_naively_truncated_log_is_refused(built):
    path, _, _ = built
    edit(path, ("DELETE FROM log WHERE seq >= 7", ()))
    refused(path, "state tables are at height 9, the log at 7")


def test_deleted_checkpoint_is_refused(built):
    path, _, _ = built
    edit(path, ("DELETE FROM meta WHERE k = 'checkpoint'", ()))
    refused(path, "no signed checkpoint")


def test_deleted_checkpoint_file_is_refused(built):
    path, _, _ = built
    path.with_name("ledger.sqlite.checkpoint").unlink()
    refused(path, "checkpoint file ledger.sqlite.checkpoint beside the ledger is missing")


def test_wiped_database_is_refused_by_the_checkpoint_file(built):
    """Deleting the whole database (its checkpoint row with it) does not make a fresh start: the
    checkpoint file beside it remembers the height the operator signed."""
    path, _, _ = built
    for name in (path.name, path.name + "-wal", path.name + "-shm"):
        path.with_name(name).unlink(missing_ok=True)
    with pytest.raises(LedgerCorrupted, match="log ends after 0 entries but the checkpoint file is at 9"):
        SqliteLedger(path, CONFIG, operator=HUB)


def test_checkpoint_resigned_by_another_key_is_refused(built):
    path, _, _ = built
    edit(path, ("UPDATE state SET value = '999999' WHERE tbl = 'balances' AND key = ?", (USERS[0].address,)))
    with SqliteLedger(path, audit=True) as ledger:  # the attacker signs the edited file as itself
        ledger.seal(ATTACKER)
    refused(path, f"signed by {ATTACKER.address}, not by this ledger's operator {HUB.address}")


def test_unreadable_checkpoint_and_columns_are_refused_not_crashed(built):
    path, _, _ = built
    edit(path, ("UPDATE meta SET v = ? WHERE k = 'checkpoint'", ('{"height": [' * 50,)))
    refused(path, "checkpoint is unreadable")
    edit(path, ("UPDATE meta SET v = ? WHERE k = 'checkpoint'", ("[]",)))
    refused(path, "checkpoint is unreadable")
    edit(path, ("UPDATE meta SET v = ? WHERE k = 'config'", ("{",)))
    refused(path, "unreadable network config")
    path.write_bytes(b"not a database" * 100)
    for suffix in ("-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    refused(path, "unreadable ledger file")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    column=st.sampled_from(["prev_hash", "time", "tx", "signature", "events_hash", "hash", "seq"]),
    seq=st.integers(0, 8),
    value=st.one_of(
        st.integers(-(2**63), 2**63 - 1), st.text(max_size=70), st.binary(max_size=70), st.none()
    ),
)
def test_any_edit_of_a_log_column_is_refused(tmp_path_factory, column, seq, value):
    """Whatever an edit writes into a hashed log column -- wrong type, size or content -- the
    open refuses it as LedgerCorrupted (never another exception, never accepted)."""
    path = tmp_path_factory.mktemp("fuzz") / "ledger.sqlite"
    build(path)
    db = sqlite3.connect(path)
    before = db.execute(f"SELECT {column} FROM log WHERE seq = ?", (seq,)).fetchone()[0]
    try:
        db.execute(f"UPDATE log SET {column} = ? WHERE seq = ?", (value, seq))
        db.commit()
    except sqlite3.IntegrityError:  # NOT NULL / duplicate seq: the file cannot hold this edit
        return
    finally:
        db.close()
    if value == before and type(value) is type(before):
        return
    with pytest.raises(LedgerCorrupted):
        SqliteLedger(path, operator=HUB)


WRITER = r"""
import sys
from deai.core.accounts import Account
from deai.ledger import NetworkConfig, SqliteLedger, SignedTx, txs
path = sys.argv[1]
minter, hub = Account.from_seed("tamper-minter", 0), Account.from_seed("tamper-hub", 0)
ledger = SqliteLedger(path, NetworkConfig(minter=minter.address, network="tamper"), operator=hub)
users = [Account.from_seed("tamper-user", i) for i in range(3)]
n = ledger.nonce(minter.address)
while True:
    mints = [txs.Mint(to=users[i % 3].address, amount=1) for i in range(20)]
    batch = [SignedTx.create(minter, m, nonce=n + i, network="tamper") for i, m in enumerate(mints)]
    assert all(hasattr(r, "height") for r in ledger.submit_many(batch))
    n += 20
    print("acked", ledger.head().height, flush=True)
"""


def test_killed_mid_write_reopens(tmp_path):
    """SIGKILL while the operator writes batches and signs checkpoints: the signed checkpoint is in
    the batch's own transaction, so the reopened file always matches it and keeps every ack."""
    path, script = tmp_path / "ledger.sqlite", tmp_path / "writer.py"
    script.write_text(WRITER)
    acked = 0
    for delay in (0.3, 0.8):
        proc = subprocess.Popen([sys.executable, str(script), str(path)], stdout=subprocess.PIPE, text=True)
        try:
            first = proc.stdout.readline()
            assert first.startswith("acked"), first
            time.sleep(delay)
            os.kill(proc.pid, signal.SIGKILL)
            lines = [first, *proc.stdout.read().splitlines()]
        finally:
            proc.kill()
            proc.wait()
        acked = max(int(line.split()[1]) for line in lines if line.startswith("acked"))
        with SqliteLedger(path, operator=HUB) as ledger:
            assert ledger.head().height >= acked and ledger.checkpoint_record().height == ledger.head().height
            assert ledger.verify().ok and ledger.check_invariants()["minted"] == ledger.head().height


def test_a_ledger_appended_without_the_key_is_replayed_then_resealed(built):
    path, _, _ = built
    with SqliteLedger(path) as ledger:  # a writer without the operator's key (a tool, a test)
        ledger.send(USERS[0], txs.Transfer(to=USERS[1].address, amount=5))
    with SqliteLedger(path, operator=HUB) as ledger:  # full replay passes: signed again
        assert ledger.checkpoint_record().height == 10
    with SqliteLedger(path) as ledger:
        ledger.send(USERS[0], txs.Transfer(to=USERS[1].address, amount=5))
    edit(path, ("UPDATE state SET value = '999999' WHERE tbl = 'balances' AND key = ?", (USERS[0].address,)))
    with pytest.raises(LedgerCorrupted, match="found by a full replay"):
        SqliteLedger(path, operator=HUB)


def test_deai_hub_refuses_a_tampered_ledger_with_one_line(built):
    path, _, _ = built
    edit(path, ("UPDATE state SET value = '999999' WHERE tbl = 'balances' AND key = ?", (USERS[0].address,)))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "deai.cli.hub",
            "--dir",
            str(path.parent),
            "--account",
            "seed:tamper-hub:0",
            "--port",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1, proc.stderr
    assert len(lines) == 1 and "Traceback" not in proc.stderr and "state tables differ" in lines[0], lines
    assert not (path.parent / "hub.url").exists()


def test_ledger_entries_reads_a_range_from_a_late_cursor(tmp_path):
    ledger = SqliteLedger(tmp_path / "ledger.sqlite", CONFIG, operator=HUB)
    ledger.submit_many(
        [ledger.sign(MINTER, txs.Mint(to=USERS[0].address, amount=1), nonce=i) for i in range(300)]
    )
    assert [e.seq for e in ledger.log(290, 5)] == list(range(290, 295))
    memory = MemoryLedger(CONFIG)
    memory.submit_many(
        [memory.sign(MINTER, txs.Mint(to=USERS[0].address, amount=1), nonce=i) for i in range(30)]
    )
    assert [e.seq for e in memory.log(28, 5)] == [28, 29] and list(memory.log(31)) == []
    hub = Hub(ledger, BlobStore(tmp_path / "blobs"), HUB, kv=KV(tmp_path / "kv"))
    client = HubClient(MemoryTransport(hub.endpoint), NET, ATTACKER)
    reply = client.call("ledger.entries", {"since": 297, "limit": 10})
    stored = list(ledger.log(297))
    assert [e["seq"] for e in reply["entries"]] == [297, 298, 299] and reply["next"] == 300
    assert [e["hash"] for e in reply["entries"]] == [e.hash for e in stored]
    assert bytes.fromhex(reply["entries"][0]["tx"]) == stored[0].tx
    assert client.call("ledger.entries", {"since": 300})["entries"] == []
    ledger.close()


def test_ledger_verify_names_the_fault_and_seal_adopts_an_unsealed_ledger(tmp_path, built):
    from typer.testing import CliRunner

    from deai.cli.ledger import app

    runner = CliRunner()
    path, _, _ = built
    assert runner.invoke(app, ["verify", "--path", str(path)]).exit_code == 0
    edit(path, ("DELETE FROM log WHERE seq >= 7", ()))
    result = runner.invoke(app, ["verify", "--path", str(path)])  # opens the damaged file to report it
    assert result.exit_code == 1 and "FAILED" in result.output and "height 9, signed by" in result.output
    result = runner.invoke(app, ["seal", "--path", str(path), "--account", "seed:tamper-hub:0"])
    assert result.exit_code == 1 and "not sealed" in result.output
    legacy = tmp_path / "legacy.sqlite"  # written without an operator (before checkpoints existed)
    with SqliteLedger(legacy, CONFIG) as ledger:
        ledger.send(MINTER, txs.Mint(to=USERS[0].address, amount=5))
    refused(legacy, "no signed checkpoint")
    result = runner.invoke(app, ["seal", "--path", str(legacy), "--account", "seed:tamper-hub:0"])
    assert result.exit_code == 0 and HUB.address in " ".join(result.output.split()), result.output
    with SqliteLedger(legacy, operator=HUB) as ledger:
        assert ledger.balance(USERS[0].address) == 5 and ledger.check_invariants()["minted"] == 5
