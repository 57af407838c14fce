"""Bad requests to a hub over HTTP get a 4xx naming what is wrong, and the hub keeps serving."""

import hashlib
import json

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deai.core.accounts import Account
from deai.core.blobs import BlobStore
from deai.core.envelope import Envelope
from deai.ledger.config import NetworkConfig
from deai.ledger.sqlite import SqliteLedger
from deai.ledger.txs import Mint, Transfer
from deai.net.http import HttpTransport, ServerThread, make_app
from deai.node.hub.kv import KV
from deai.node.hub.server import _ROUTES, Hub
from deai.node.participant.client import HubClient

NET = "badreq"
MINTER = Account.from_seed("bad-minter", 0)
ALICE = Account.from_seed("bad-alice", 0)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("hub")
    ledger = SqliteLedger(root / "ledger.sqlite", NetworkConfig(minter=MINTER.address, network=NET))
    hub = Hub(
        ledger, BlobStore(root / "blobs", max_bytes=4096), Account.from_seed("bad-hub", 0), kv=KV(root / "kv")
    )
    with ServerThread(make_app(hub.endpoint)) as server:
        yield hub, server.url
    ledger.close()


def post(url, raw):
    return httpx.post(f"{url}/v1/envelope", content=raw, timeout=10)


def healthy(url):
    return httpx.get(f"{url}/v1/health", timeout=10).status_code == 200


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
bodies = st.dictionaries(
    st.sampled_from(
        ["task", "txs", "q", "args", "since", "limit", "statements", "providers", "addresses", "x"]
    ),
    json_values,
    max_size=5,
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(tuple(_ROUTES)), body=bodies)
def test_fuzzed_bodies_are_refused_cleanly(served, kind, body):
    _, url = served
    reply = post(url, Envelope.seal(ALICE, kind, body, NET).to_bytes())
    assert reply.status_code < 500, reply.text
    if reply.status_code >= 400:
        assert reply.json()["reason"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=300))
def test_garbage_bytes_get_400(served, raw):
    _, url = served
    assert post(url, raw).status_code in (400, 413)
    assert healthy(url)


def test_signature_replay_network_and_size_refusals(served):
    _, url = served
    env = Envelope.seal(ALICE, "hub.info", {}, NET)
    forged = env.to_dict() | {"body": {"x": 1}}
    r = post(url, Envelope.from_dict(forged).to_bytes())
    assert r.status_code == 401 and r.json()["error"] in ("SenderMismatch", "BadSignature")
    assert post(url, env.to_bytes()).status_code == 200
    assert post(url, env.to_bytes()).status_code == 200  # an identical retry: the first answer again
    replay = Envelope.seal(ALICE, "task.list", {}, NET, nonce=env.nonce)
    assert post(url, replay.to_bytes()).status_code == 409
    other = Envelope.seal(ALICE, "hub.info", {}, "elsewhere")
    assert post(url, other.to_bytes()).json()["error"] == "WrongNetwork"
    unknown = Envelope.seal(ALICE, "hub.shutdown", {}, NET)
    assert post(url, unknown.to_bytes()).status_code == 404
    assert healthy(url)


def test_blob_hash_and_size_refusals(served):
    hub, url = served

    def signed(digest, size):  # uploads are signed (issue 12, finding 7): here by the hub itself
        env = Envelope.seal(hub.account, "blob.put", {"digest": digest, "size": size}, NET)
        return {"X-Deai-Envelope": env.to_bytes().decode()}

    data = b"payload"
    wrong = hashlib.sha256(b"other").hexdigest()
    r = httpx.put(f"{url}/v1/blobs/{wrong}", content=data, headers=signed(wrong, len(data)))
    assert r.status_code == 422 and r.json()["error"] == "BlobCorrupted"
    big = b"x" * 5000
    digest = hashlib.sha256(big).hexdigest()
    r = httpx.put(f"{url}/v1/blobs/{digest}", content=big, headers=signed(digest, len(big)))
    assert r.status_code == 413
    assert httpx.put(f"{url}/v1/blobs/not-a-digest", content=data).status_code == 400
    assert healthy(url)


def test_bad_transactions_and_statements_are_named(served):
    _hub, url = served
    client = HubClient(HttpTransport(url, retries=1), NET, ALICE)
    client.submit([(MINTER, Mint(to=ALICE.address, amount=50))])
    results = client.submit([(ALICE, Transfer(to=MINTER.address, amount=10**6))], check=False)
    assert not results[0]["ok"] and results[0]["error"] == "InsufficientBalance"
    stx = client.sign(ALICE, Transfer(to=MINTER.address, amount=1))
    tampered = stx.to_dict() | {"signature": "0x" + "11" * 65}
    raw = json.dumps(tampered).encode().hex()
    r = post(url, Envelope.seal(ALICE, "ledger.submit", {"txs": [raw]}, NET).to_bytes())
    assert r.status_code == 200 and r.json()["results"][0]["error"] in ("BadTxSignature", "MalformedTx")
    r = post(url, Envelope.seal(ALICE, "ledger.submit", {"txs": ["zz"]}, NET).to_bytes())
    assert r.status_code == 400 and "hex" in r.json()["reason"]
    r = post(url, Envelope.seal(ALICE, "ledger.query", {"q": "secret_key", "args": {}}, NET).to_bytes())
    assert r.status_code == 400 and "unknown query" in r.json()["reason"]
    r = post(url, Envelope.seal(ALICE, "task.status", {"task": "0x" + "00" * 32}, NET).to_bytes())
    assert r.status_code == 404
    r = post(url, Envelope.seal(ALICE, "task.updates", {"statements": [{"task": 1}]}, NET).to_bytes())
    assert r.json()["results"][0]["error"] == "BadStatement"
    assert healthy(url)
