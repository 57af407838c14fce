"""With the ledger on a chain the hub is an untrusted relay: a participant that reads the chain
itself (``HubClient(chain=...)``) sees the contract's state whatever the hub answers, and a hub
that announces a network config other than the contract's is caught when the participant starts.
(py-evm in process; the same over anvil and real processes: tests/node/test_node_evm_network.py.)"""

from __future__ import annotations

import pytest

from deai.core.accounts import Account
from deai.ledger.errors import LedgerError
from deai.ledger.evm.backend import EvmLedger
from deai.ledger.txs import Transfer
from deai.net.memory import MemoryTransport
from deai.node.launch.chain import participant_chain
from deai.node.launch.inprocess import LocalNetwork
from deai.node.participant.client import HubClient, TxFailed


class LyingTransport(MemoryTransport):
    """A hub whose answers about the ledger are forged: every balance is inflated, every nonce is
    off by 5 and its event log is made up."""

    def send(self, envelope):
        reply = super().send(envelope)
        body = envelope.body
        if envelope.type == "ledger.query" and body["q"] in ("balance", "nonce"):
            reply = {"result": reply["result"] + (10**9 if body["q"] == "balance" else 5)}
        if envelope.type == "ledger.events":
            data = {"to": envelope.sender, "amount": 10**9}
            reply = {"events": [{"seq": 0, "height": 0, "kind": "minted", "data": data}], "next": 1}
        return reply


@pytest.fixture(scope="module")
def network(tmp_path_factory):
    net = LocalNetwork(tmp_path_factory.mktemp("chain-reads"), ledger="evm")
    yield net


def test_a_participant_reading_the_chain_is_not_fooled_by_its_hub(network):
    net = network
    alice, bob = Account.from_seed("cr-alice", 0), Account.from_seed("cr-bob", 0)
    net.fund([alice], 1_000)
    assert isinstance(net.ledger, EvmLedger)
    # the participant's own view: the contract at an address it trusts, on its own RPC connection
    view = participant_chain_on(net, net.hub.endpoint)
    fooled = HubClient(LyingTransport(net.hub.endpoint), net.network, alice)
    reader = HubClient(LyingTransport(net.hub.endpoint), net.network, alice, chain=view)
    assert fooled.query("balance", address=alice.address) == 1_000 + 10**9
    assert reader.query("balance", address=alice.address) == 1_000
    assert fooled.events()[0][0]["data"]["amount"] == 10**9
    events, cursor = reader.events()
    assert [e["kind"] for e in events] == ["minted"] and events[0]["data"]["amount"] == 1_000
    # signing takes the nonce from the chain: the forged nonce would make every transaction fail
    with pytest.raises(TxFailed, match="nonce"):
        fooled.send_tx(alice, Transfer(to=bob.address, amount=1))
    reader.send_tx(alice, Transfer(to=bob.address, amount=100))  # relayed by the hub, read from the chain
    assert reader.query("balance", address=bob.address) == 100 == net.ledger.balance(bob.address)
    assert reader.events(cursor)[0][-1]["kind"] == "transferred"
    # the same answer format as a hub's (a head as JSON, a record as its record)
    head = net.ledger.head()
    assert reader.query("head") == {"height": head.height, "hash": head.hash, "time": head.time}


def participant_chain_on(net, endpoint):
    """The participant's view built as `deai node --rpc --ledger-address` builds it, but on the
    in-process chain (no RPC URL): the config announced by the hub, checked against the contract."""
    info = HubClient(MemoryTransport(endpoint), net.network, Account.create()).info()
    assert info["config"] == net.ledger.config.to_dict()
    return EvmLedger(net.ledger.w3, net.ledger.config, deploy=net.ledger.address)


def test_a_hub_announcing_another_config_is_caught(network):
    net = network
    lie = {**net.ledger.config.to_dict(), "slash_bps": 10_000}  # the hub claims harsher slashing
    with pytest.raises(LedgerError, match="not a ledger of this network config"):
        EvmLedger(net.ledger.w3, type(net.ledger.config).from_dict(lie), deploy=net.ledger.address)
    with pytest.raises(LedgerError, match="unknown field"):
        participant_chain(_Ref(), {"no_such_field": 1})


class _Ref:
    rpc = "http://127.0.0.1:9"  # never reached: the config is refused first
    address = "0x" + "00" * 20
