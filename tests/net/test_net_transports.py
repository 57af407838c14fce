"""The same behaviour over both transports: in-memory and real HTTP on 127.0.0.1."""

import hashlib
import os

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deai.core.accounts import Account
from deai.core.envelope import Envelope
from deai.core.errors import BlobCorrupted
from deai.net.http import HttpTransport, ServerThread, make_app
from deai.net.transport import RemoteError

NET = "nettest"


def test_send_envelopes(transport_and_endpoint, alice):
    transport, _endpoint = transport_and_endpoint
    assert transport.send(Envelope.seal(alice, "add", {"amount": 2}, NET)) == {
        "counter": 2,
        "from": alice.address,
    }
    assert transport.send(Envelope.seal(alice, "add", {"amount": 3}, NET))["counter"] == 5
    assert transport.bytes_sent > 0


def test_identical_retry_gets_first_answer_but_new_replay_is_refused(transport_and_endpoint, alice):
    transport, endpoint = transport_and_endpoint
    env = Envelope.seal(alice, "add", {"amount": 1}, NET)
    assert transport.send(env)["counter"] == 1
    assert transport.send(env)["counter"] == 1  # idempotent retry: applied once
    assert endpoint.state["counter"] == 1
    forged = Envelope(
        env.type, {"amount": 50}, env.sender, env.nonce, env.timestamp, env.network, env.signature
    )
    with pytest.raises(RemoteError) as err:
        transport.send(forged)
    assert err.value.status == 401


@pytest.mark.parametrize(
    "make, status, error",
    [
        (lambda a: Envelope.seal(a, "add", {"amount": 1}, "othernet"), 400, "WrongNetwork"),
        (lambda a: Envelope.seal(a, "mint", {}, NET), 404, "UnknownMessageType"),
        (lambda a: Envelope.seal(a, "add", {"amount": 1}, NET, timestamp=5), 400, "StaleTimestamp"),
        (lambda a: Envelope.seal(a, "add", {"amount": -1}, NET), 400, "ServiceError"),
        (lambda a: Envelope.seal(a, "add", {"pad": "x" * 5000}, NET), 413, "BodyTooLarge"),
        (lambda a: Envelope.seal(a, "crash", {}, NET), 500, "ServiceError"),
    ],
)
def test_refusals_name_the_reason_and_the_endpoint_keeps_serving(
    transport_and_endpoint, alice, make, status, error
):
    transport, _endpoint = transport_and_endpoint
    with pytest.raises(RemoteError) as err:
        transport.send(make(alice))
    assert err.value.status == status and err.value.error == error and err.value.reason
    assert transport.send(Envelope.seal(alice, "add", {"amount": 1}, NET))["counter"] == 1


def test_blobs_round_trip_and_bad_uploads(transport_and_endpoint, alice):
    transport, endpoint = transport_and_endpoint
    data = os.urandom(300_000)
    digest = transport.put_blob(data, account=alice, network=NET)
    assert digest == hashlib.sha256(data).hexdigest()
    assert transport.get_blob(digest) == data
    with pytest.raises(RemoteError) as err:
        transport.put_blob(
            b"not what you said", expected=hashlib.sha256(b"other").hexdigest(), account=alice, network=NET
        )
    assert err.value.status == 422
    with pytest.raises(RemoteError) as err:
        transport.put_blob(os.urandom((1 << 20) + 10), account=alice, network=NET)
    assert err.value.status == 413
    with pytest.raises(RemoteError) as err:
        transport.get_blob("0" * 64)
    assert err.value.status == 404
    assert sorted(endpoint.blobs.digests()) == [digest]


def test_client_refuses_a_swapped_blob(transport_and_endpoint, alice):
    transport, endpoint = transport_and_endpoint
    digest = transport.put_blob(b"original" * 1000, account=alice, network=NET)
    endpoint.blobs.path(digest).write_bytes(b"swapped!" * 1000)
    with pytest.raises((BlobCorrupted, RemoteError, httpx.HTTPError)):
        transport.get_blob(digest)


def test_http_raw_garbage_is_refused_with_4xx(endpoint_factory):
    endpoint = endpoint_factory()
    with ServerThread(make_app(endpoint)) as server, httpx.Client(base_url=server.url) as client:
        r = client.post("/v1/envelope", content=b"\x00\xffnot json")
        assert r.status_code == 400 and r.json()["error"] == "MalformedEnvelope"
        r = client.post("/v1/envelope", content=b"x" * 100_000)
        assert r.status_code == 413
        r = client.put("/v1/blobs/not-a-digest", content=b"abc")
        assert r.status_code == 400 and "digest" in r.json()["reason"]
        assert client.get("/v1/health").json()["network"] == NET


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=600) | st.text(max_size=300).map(str.encode))
def test_http_fuzzed_bodies_never_break_the_server(shared_server, body):
    server, endpoint = shared_server
    r = httpx.post(server.url + "/v1/envelope", content=body)
    assert 400 <= r.status_code < 500
    transport = HttpTransport(server.url)
    before = endpoint.state["counter"]
    alice = Account.from_seed("fuzz")
    assert transport.send(Envelope.seal(alice, "add", {"amount": 1}, NET))["counter"] == before + 1
    transport.close()


def test_tls(endpoint_factory, tmp_path, alice):
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    endpoint = endpoint_factory()
    with ServerThread(make_app(endpoint), ssl_certfile=str(certfile), ssl_keyfile=str(keyfile)) as server:
        assert server.url.startswith("https://")
        transport = HttpTransport(server.url, verify=str(certfile))
        assert transport.send(Envelope.seal(alice, "add", {"amount": 4}, NET))["counter"] == 4
        transport.close()
        with pytest.raises(httpx.ConnectError):  # an unknown certificate is refused
            HttpTransport(server.url, retries=0).send(Envelope.seal(alice, "add", {"amount": 1}, NET))


def test_typed_alias_route_takes_only_its_message_type(endpoint_factory, alice):
    endpoint = endpoint_factory()
    with (
        ServerThread(make_app(endpoint, routes={"/v1/add": "add"})) as server,
        httpx.Client(base_url=server.url) as c,
    ):
        ok = c.post("/v1/add", content=Envelope.seal(alice, "add", {"amount": 3}, NET).to_bytes())
        assert ok.status_code == 200 and ok.json()["counter"] == 3
        wrong = c.post("/v1/add", content=Envelope.seal(alice, "crash", {}, NET).to_bytes())
        assert wrong.status_code == 400 and "takes 'add' envelopes" in wrong.json()["reason"]
        garbage = c.post("/v1/add", content=b"{")
        assert garbage.status_code == 400 and garbage.json()["error"] == "MalformedEnvelope"
