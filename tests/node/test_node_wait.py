"""The hub's long poll (hub.wait): wakes on a change, answers at once for another boot, refuses bad
bodies; and the Changes counter behind it."""

import threading

import pytest

from deai.core.accounts import Account
from deai.core.blobs import BlobStore
from deai.ledger.config import NetworkConfig
from deai.ledger.sqlite import SqliteLedger
from deai.ledger.txs import Mint
from deai.net.http import HttpTransport, ServerThread, make_app
from deai.net.transport import RemoteError
from deai.node.hub.kv import KV
from deai.node.hub.notify import MAX_WAIT_MS, Changes
from deai.node.hub.server import Hub
from deai.node.participant.client import HubClient

NET = "waitnet"
MINTER = Account.from_seed("wait-minter", 0)
ALICE = Account.from_seed("wait-alice", 0)


@pytest.fixture
def served(tmp_path):
    ledger = SqliteLedger(tmp_path / "ledger.sqlite", NetworkConfig(minter=MINTER.address, network=NET))
    hub = Hub(ledger, BlobStore(tmp_path / "blobs"), Account.from_seed("wait-hub", 0), kv=KV(tmp_path / "kv"))
    with ServerThread(make_app(hub.endpoint)) as server:
        clients = [
            HubClient(HttpTransport(server.url, retries=0, timeout=30), NET, a) for a in (ALICE, MINTER)
        ]
        yield hub, *clients
        for c in clients:
            c.transport.close()
    ledger.close()


def test_a_long_poll_wakes_when_the_hub_changes(served, monkeypatch):
    hub, alice, minter = served
    monkeypatch.setattr("deai.node.hub.notify.MAX_WAIT_MS", 120_000)  # a poll that cannot end by itself here
    first = alice.call("hub.wait", {"since": -1, "boot": None, "timeout_ms": 120_000})
    assert first["boot"] == hub.changes.boot  # another boot (here: none yet) answers at once
    answer = {}
    body = {"since": first["version"], "boot": first["boot"], "timeout_ms": 120_000}
    waiter = threading.Thread(target=lambda: answer.update(alice.call("hub.wait", body)), daemon=True)
    waiter.start()
    # Other requests are served while the poll waits; a ledger write wakes it.
    assert alice.query("balance", address=ALICE.address) == 0
    minter.submit([(MINTER, Mint(to=ALICE.address, amount=5))])
    waiter.join(timeout=60)
    assert not waiter.is_alive(), "the long poll was not woken by the ledger write"
    assert answer["version"] > first["version"]
    # Read-only requests change nothing: a zero-timeout poll sees the same version.
    alice.query("balance", address=ALICE.address)
    again = alice.call("hub.wait", {"since": answer["version"], "boot": hub.changes.boot, "timeout_ms": 0})
    assert again["version"] == answer["version"]


@pytest.mark.parametrize(
    "body",
    [
        {"since": 0, "boot": None},
        {"since": "0", "boot": None, "timeout_ms": 10},
        {"since": 0, "boot": None, "timeout_ms": True},
        {"since": 0, "boot": None, "timeout_ms": -1},
        {"since": 0, "boot": None, "timeout_ms": MAX_WAIT_MS + 1},
    ],
)
def test_bad_wait_bodies_are_refused(served, body):
    _, alice, _ = served
    with pytest.raises(RemoteError) as err:
        alice.call("hub.wait", body)
    assert err.value.status == 400 and err.value.reason


def test_changes_wait_returns_past_since_or_at_the_waiter_cap():
    changes = Changes(max_waiters=1)
    assert changes.wait(-1, 10.0) == 0  # already past
    woke = {}
    t = threading.Thread(target=lambda: woke.update(v=changes.wait(0, 60.0)), daemon=True)
    t.start()
    while changes._waiters == 0 and t.is_alive():
        threading.Event().wait(0.01)
    assert changes.wait(0, 30.0) == 0  # the cap is reached: answered at once, without waiting
    changes.bump()
    t.join(timeout=20)
    assert not t.is_alive() and woke["v"] == 1  # woken by the bump, long before its timeout
