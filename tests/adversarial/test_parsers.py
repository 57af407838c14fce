"""Issue 12, findings 2 and 10: every parser of foreign bytes refuses with a typed error, never crashes.

``b"[" * 100_000 + b"]" * 100_000`` posted to ``/v1/envelope`` killed the hub with SIGSEGV (py_ecc,
imported through eth-account, had raised the recursion limit to 100,000, so ``json`` overflowed the C
stack), and a 5,000-digit integer got a 500. The class: bytes from another party reach a parser
before anything bounds them. Here each parser -- :func:`deai.core.encoding.parse_json` and everything
built on it (envelopes, transactions, task and job specs, safetensors headers, model documents, hub
answers) -- is fed nesting, huge numbers, NaN, truncations, random bytes and lying safetensors
headers, and must raise its typed error; a hub over HTTP answers 4xx and keeps serving.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import struct
import subprocess
import sys
import time

import httpx
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from deai.core.accounts import Account
from deai.core.blobs import BlobStore
from deai.core.encoding import MAX_DEPTH, MAX_DIGITS, canonical, parse_json, sha256_hex
from deai.core.envelope import Envelope
from deai.core.errors import DeaiError, EncodingError, MalformedEnvelope, TensorError
from deai.core.tensorio import MAX_DIMS, from_safetensors, to_safetensors
from deai.learn.errors import ModelError
from deai.learn.models import MAX_PARAMS, build_model
from deai.ledger.commitments import model_id
from deai.ledger.config import NetworkConfig
from deai.ledger.errors import LedgerError
from deai.ledger.sqlite import SqliteLedger
from deai.ledger.tx import SignedTx
from deai.ledger.txs import Mint, RegisterModel
from deai.net.http import HttpTransport, ServerThread, make_app
from deai.net.transport import RemoteError
from deai.node.hub.kv import KV
from deai.node.hub.server import Hub
from deai.node.participant.client import HubClient
from deai.protocol.jobs.errors import BadJobSpec
from deai.protocol.jobs.spec import JobSpec
from deai.protocol.task.errors import BadTaskSpec
from deai.protocol.task.spec import TaskSpec

NET = "adv-parse"
MINTER = Account.from_seed("parse-minter", 0)
HUB = Account.from_seed("parse-hub", 0)
FUNDED = Account.from_seed("parse-funded", 0)  # a balance: may upload blobs
OUTSIDER = Account.from_seed("parse-outsider", 0)  # holds nothing

DEEP = b"[" * 100_000 + b"]" * 100_000  # the payload that killed the hub
BIG_INT = b"9" * 5_000  # over Python's 4,300-digit int() limit: a ValueError, once a 500


def deep_object(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


# -- parse_json itself --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        DEEP,
        deep_object(100_000),
        b'[{"a":' * 50_000,  # deep and truncated
        b"[" * 10_000_000,  # deep, 10 MB
        b"[" + BIG_INT + b"]",
        b'{"nonce": ' + BIG_INT + b"}",
        b"[1." + b"1" * 5_000 + b"]",
        b"[1e" + b"9" * 5_000 + b"]",
        b"[1e999]",  # parses to infinity
        b"[NaN]",
        b"[Infinity]",
        b"[-Infinity]",
        b'{"a": [1, 2',
        b"",
        b"\xff\xfe[]",
        b'"\\',
        b'"\\"\\"' * 1000,  # an unterminated string full of escapes
    ],
)
def test_parse_json_refuses_with_encoding_error(raw):
    with pytest.raises(EncodingError):
        parse_json(raw, max_bytes=16 << 20, what="input")


def test_parse_json_bounds_are_exact():
    """Depth and digits are refused one past their bound, accepted at it; brackets and digits inside
    strings are text, not structure."""
    at_bound = b"[" * MAX_DEPTH + b"]" * MAX_DEPTH
    assert parse_json(at_bound, max_bytes=1 << 20) == json.loads(at_bound)
    with pytest.raises(EncodingError, match="deeper"):
        parse_json(b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), max_bytes=1 << 20)
    assert parse_json(b"[" + b"9" * MAX_DIGITS + b"]", max_bytes=1 << 20) == [int("9" * MAX_DIGITS)]
    with pytest.raises(EncodingError, match="digits"):
        parse_json(b"[" + b"9" * (MAX_DIGITS + 1) + b"]", max_bytes=1 << 20)
    text = json.dumps({"s": "[" * 10_000 + '\\"{' + "9" * 10_000})
    assert parse_json(text.encode(), max_bytes=1 << 20) == json.loads(text)
    with pytest.raises(EncodingError, match="over 10"):
        parse_json(b"[1,2,3,4,5,6]", max_bytes=10)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_parse_json_reads_what_json_writes(value):
    assert parse_json(json.dumps(value).encode(), max_bytes=1 << 20) == value


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=400)
    | st.text(alphabet='[]{}",:\\0123456789.eE-+ aNIfinity', max_size=400).map(str.encode)
)
def test_parse_json_on_any_bytes_answers_a_value_or_encoding_error(raw):
    with contextlib.suppress(EncodingError):
        parse_json(raw, max_bytes=1 << 20, max_depth=8, max_digits=8)


@settings(max_examples=100, deadline=None)
@given(json_values, st.data())
def test_truncated_json_is_refused(value, data):
    raw = json.dumps([value]).encode()
    cut = data.draw(st.integers(0, len(raw) - 1))
    with pytest.raises(EncodingError):
        parse_json(raw[:cut], max_bytes=1 << 20)


def test_the_recursion_limit_stays_sane():
    """py_ecc sets 100,000 when imported; importing deai (and the hub, eth-account and all) puts back
    the interpreter's limit, so a recursive parser raises instead of overflowing the C stack."""
    code = "import sys, deai.node.hub.server, eth_account; print(sys.getrecursionlimit())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(out.stdout) <= 10_000
    # and signing and recovery (libsecp256k1) are unaffected
    from deai.core.accounts import recover_signer

    assert recover_signer(b"data", FUNDED.sign(b"data")) == FUNDED.address


# -- parsers built on it --------------------------------------------------------------------------------

HOSTILE = [DEEP, deep_object(5_000), b'{"type": ' + BIG_INT + b"}", b"[NaN]", b'{"a": 1e999}', b"\x00\xff"]


@pytest.mark.parametrize("raw", HOSTILE)
def test_every_parser_of_foreign_bytes_refuses_with_its_typed_error(raw):
    with pytest.raises(MalformedEnvelope):
        Envelope.from_bytes(raw)
    with pytest.raises(LedgerError):
        SignedTx.from_bytes(raw[:65_536])
    with pytest.raises(BadTaskSpec):
        TaskSpec.from_bytes(raw[:65_536])
    with pytest.raises(BadJobSpec):
        JobSpec.from_bytes(raw)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_get_typed_errors(raw):
    for parse in (Envelope.from_bytes, SignedTx.from_bytes, TaskSpec.from_bytes, JobSpec.from_bytes):
        with contextlib.suppress(DeaiError):
            parse(raw)


def envelope_with(field: str, literal: bytes) -> bytes:
    """A well-formed envelope's wire bytes with one field's value replaced by ``literal``."""
    raw = Envelope.seal(OUTSIDER, "hub.info", {}, NET).to_bytes()
    data = json.loads(raw)
    marker = b'"@@"'
    data[field] = "@@"
    return json.dumps(data).encode().replace(marker, literal)


@pytest.mark.parametrize(
    "raw",
    [
        envelope_with("nonce", BIG_INT),
        envelope_with("timestamp", b"1e999"),
        envelope_with("body", b'{"x": NaN}'),
        envelope_with("body", deep_object(10_000)),
        envelope_with("signature", b'"0x' + b"AB" * 65 + b'"'),  # upper case: another id, same envelope
    ],
)
def test_envelope_fields_are_bounded(raw):
    with pytest.raises(MalformedEnvelope):
        Envelope.from_bytes(raw)


# -- safetensors headers ------------------------------------------------------------------------------


def with_header(header: object, body: bytes = b"") -> bytes:
    raw = json.dumps(header).encode() if not isinstance(header, bytes) else header
    return struct.pack("<Q", len(raw)) + raw + body


GOOD = to_safetensors({"w": torch.ones(2, 3)})


@pytest.mark.parametrize(
    "data",
    [
        struct.pack("<Q", 2**64 - 1) + b"{}",  # a header length past the data
        struct.pack("<Q", 1 << 40) + b"{}" * 100,
        with_header(b"[" * 100_000 + b"]" * 100_000),  # the crash, inside a header
        with_header(
            b'{"w": {"dtype": "F32", "shape": [' + BIG_INT + b'], "data_offsets": [0, 4]}}', b"\0" * 4
        ),
        with_header(
            {"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 4]}}, b"\0" * 4
        ),  # 12 != 4 bytes
        with_header({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, b"\0" * 4),
        with_header({"w": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}}, b"\0" * 4),
        with_header({"w": {"dtype": "F32", "shape": [True], "data_offsets": [0, 4]}}, b"\0" * 4),
        with_header(
            {"w": {"dtype": "F32", "shape": [1] * (MAX_DIMS + 1), "data_offsets": [0, 4]}}, b"\0" * 4
        ),
        with_header({"w": {"dtype": "F32", "shape": [2**40, 0], "data_offsets": [0, 0]}}),
        with_header({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 2**62]}}, b"\0" * 4),
        with_header({"w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}}, b"\0" * 4),
        with_header({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4], "x": 1}}, b"\0" * 4),
        with_header({"w": {"dtype": "PICKLE", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4),
        with_header({"__metadata__": {"a": [1]}}),
        with_header({f"t{i}": {"dtype": "U8", "shape": [0], "data_offsets": [0, 0]} for i in range(70_000)}),
        with_header({"n" * 5_000: {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}}, b"\0"),
        with_header(["not", "an", "object"]),
        GOOD[:-3],
    ],
)
def test_hostile_safetensors_are_refused(data):
    with pytest.raises(TensorError):
        from_safetensors(data)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_any_corruption_of_safetensors_is_a_tensor_error_or_the_same_layout(data):
    raw = bytearray(GOOD)
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    try:
        out = from_safetensors(bytes(raw), require_finite=False)
    except TensorError:
        return
    assert sum(t.numel() * t.element_size() for t in out.values()) <= len(raw)


# -- models built from foreign arguments ----------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"hidden": [-1]},  # finding 3's spec: made construction raise in the hub's tick
        {"hidden": [0]},
        {"hidden": [10**6, 10**6]},  # 10^12 parameters: refused before any allocation
        {"hidden": [True]},
        {"hidden": "64"},
        {"hidden": [1.5]},
        {"hidden": [8] * 17},
        {"hidden": [[8]]},
        {"nope": 3},
    ],
)
def test_models_from_foreign_arguments_are_refused_before_they_are_built(kwargs):
    with pytest.raises((ModelError, TypeError)):
        build_model("mlp", 64, 10, **kwargs)


def test_a_model_over_the_parameter_cap_is_refused():
    width = MAX_PARAMS // 64 + 1
    with pytest.raises(ModelError, match="parameters"):
        build_model("mlp", 64, 10, hidden=[width])
    with pytest.raises(ModelError):
        build_model("cnn", 64, 10, channels=[1, 2, 3])


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.sampled_from(["hidden", "channels", "input_shape", "x"]), json_values, max_size=3))
def test_any_model_arguments_build_or_raise_model_error(kwargs):
    for name in ("mlp", "cnn", "logreg"):
        with contextlib.suppress(ModelError):
            build_model(name, 16, 3, **kwargs)


# -- a hub over HTTP ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    root = tmp_path_factory.mktemp("parse-hub")
    ledger = SqliteLedger(root / "ledger.sqlite", NetworkConfig(minter=MINTER.address, network=NET))
    ledger.send(MINTER, Mint(to=FUNDED.address, amount=1_000))
    hub = Hub(ledger, BlobStore(root / "blobs", max_bytes=4 << 20), HUB, kv=KV(root / "kv"))
    with ServerThread(make_app(hub.endpoint)) as server:
        yield hub, server.url
    assert ledger.supply()["minted"] == 1_000
    ledger.check_invariants()
    ledger.close()


def post(url: str, raw: bytes) -> httpx.Response:
    return httpx.post(f"{url}/v1/envelope", content=raw, timeout=60)


def info(url: str) -> dict:
    return HubClient(HttpTransport(url), NET, OUTSIDER).info()


@pytest.mark.parametrize(
    "raw",
    [
        DEEP,
        b'{"type": "hub.info", "nonce": ' + BIG_INT + b"}",
        envelope_with("nonce", BIG_INT),
        envelope_with("body", deep_object(100_000)),
        envelope_with("body", b'{"since": NaN}'),
    ],
    ids=["deep", "big-int", "big-int-field", "deep-body", "nan"],
)
def test_hub_answers_4xx_and_keeps_serving(hub, raw):
    _, url = hub
    answer = post(url, raw)
    assert 400 <= answer.status_code < 500, answer.text[:200]
    assert answer.json()["error"] == "MalformedEnvelope"
    assert info(url)["network"] == NET


def test_a_deep_transaction_in_a_submit_is_refused_alone(hub):
    """Signed envelope, hostile transaction inside: that transaction is refused, the batch answers."""
    _, url = hub
    client = HubClient(HttpTransport(url), NET, OUTSIDER)
    txs = [(b"[" * 30_000 + b"]" * 30_000).hex(), (b'{"nonce": ' + BIG_INT + b"}").hex()]
    try:
        results = client.call("ledger.submit", {"txs": txs})["results"]
        assert all(not r["ok"] for r in results)
    except RemoteError as exc:
        assert 400 <= exc.status < 500
    assert info(url)["network"] == NET


def test_a_model_whose_document_is_deep_json_is_skipped_by_infer_models(hub):
    """The registered document that killed the hub on every ``infer.models`` (even after restarts):
    the list answers, without it."""
    _, url = hub
    client = HubClient(HttpTransport(url), NET, FUNDED)
    document = b"[" * 100_000 + b"]" * 100_000
    client.put_blob(document, expected=sha256_hex(document))
    bomb = deep_object(20_000)  # a second shape: objects, parsed by a different code path
    client.put_blob(bomb, expected=sha256_hex(bomb))
    for doc in (document, bomb):
        digest = "0x" + sha256_hex(doc)
        client.send_tx(
            OUTSIDER,
            RegisterModel(
                model=model_id(OUTSIDER.address, None, digest),
                task=None,
                provenance="0x" + hashlib.sha256(b"p").hexdigest(),
                document=digest,
                total_shares=1,
                host_bps=0,
            ),
        )
    models = client.call("infer.models")["models"]
    assert model_id(OUTSIDER.address, None, "0x" + sha256_hex(document)) not in models
    assert info(url)["network"] == NET


def test_a_hub_answer_that_is_deep_json_is_a_remote_error(tmp_path):
    """The daemons parse hub answers as foreign bytes too: a hostile hub gets a RemoteError."""
    from fastapi import FastAPI
    from fastapi.responses import Response

    app = FastAPI()
    payloads = iter([DEEP, b'{"a": ' + BIG_INT + b"}", b"[1, 2]", b"{"])

    @app.post("/v1/envelope")
    async def envelope() -> Response:
        return Response(next(payloads), media_type="application/json")

    with ServerThread(app) as server:
        transport = HttpTransport(server.url, retries=0)
        for _ in range(4):
            with pytest.raises(RemoteError, match="MalformedAnswer"):
                transport.send(Envelope.seal(OUTSIDER, "hub.info", {}, NET))


def test_a_hub_answer_missing_its_fields_is_a_remote_error():
    """A hub answering valid JSON of the wrong shape: the client raises RemoteError, not KeyError."""
    from fastapi import FastAPI
    from fastapi.responses import Response

    from deai.ledger.txs import Transfer

    app = FastAPI()
    payloads = iter(
        [b"{}", b'{"events": {}, "next": 1}', b'{"result": true}', b'{"result": 0}', b'{"results": [1]}']
    )

    @app.post("/v1/envelope")
    async def envelope() -> Response:
        return Response(next(payloads), media_type="application/json")

    with ServerThread(app) as server:
        client = HubClient(HttpTransport(server.url, retries=0), NET, OUTSIDER)
        for call in (
            lambda: client.query("head"),
            lambda: client.events(),
            lambda: client.sign(OUTSIDER, Transfer(to=FUNDED.address, amount=1)),  # nonce True
            lambda: client.send_tx(OUTSIDER, Transfer(to=FUNDED.address, amount=1)),  # nonce 0, then [1]
        ):
            with pytest.raises(RemoteError, match="MalformedAnswer"):
                call()


def test_a_daemon_outlives_a_hub_that_answers_nonsense(tmp_path):
    """A daemon's loop treats a malformed hub answer (here ``hub.wait`` without its fields) like a
    restarting hub: it logs and tries again, it does not die."""
    import threading

    from fastapi import FastAPI
    from fastapi.responses import Response

    from deai.node.participant.daemon import Daemon

    app = FastAPI()
    calls = []

    @app.post("/v1/envelope")
    async def envelope() -> Response:
        calls.append(1)
        return Response(b'{"version": 1}', media_type="application/json")

    with ServerThread(app) as server:
        daemon = Daemon(HubClient(HttpTransport(server.url, retries=0), NET, OUTSIDER), {}, tmp_path)
        stop = threading.Event()
        thread = threading.Thread(
            target=daemon.run, args=(stop,), kwargs={"long_poll": 0.05, "interval": 0.01}
        )
        thread.start()
        try:
            deadline = time.monotonic() + 30
            while len(calls) < 3 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert thread.is_alive() and len(calls) >= 3  # asked again after each nonsense answer
        finally:
            stop.set()
            thread.join(timeout=10)


def test_canonical_round_trip_is_unchanged():
    """What honest parties send still parses to itself (bounds are far above real messages)."""
    value = {"body": {"txs": ["ab" * 100] * 50, "deep": [[[[{"x": 2**53 - 1, "y": -0.5}]]]]}, "n": "x"}
    assert parse_json(canonical(value), max_bytes=1 << 20) == value
