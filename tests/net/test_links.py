"""Traffic counters and the bandwidth model: the memory transport counts the payload the HTTP
client counts, and a link turns counts into seconds as documented."""

import json
import math

import pytest

from conftest import NET, make_endpoint
from deai.core.envelope import Envelope
from deai.net.http import HttpTransport, ServerThread, make_app
from deai.net.links import HOME, Link, ProviderRound, Traffic, round_seconds, time_to_target
from deai.net.memory import MemoryTransport
from deai.net.transport import RemoteError
from deai.node.participant.daemon import TRAFFIC_FILE, read_traffic


def _exchange(transport, alice) -> None:
    """The same requests on any transport: two envelopes, one refused one, an upload, a download."""
    transport.send(Envelope.seal(alice, "add", {"amount": 2}, NET))
    transport.send(Envelope.seal(alice, "add", {"amount": 40}, NET))
    with pytest.raises(RemoteError):
        transport.send(Envelope.seal(alice, "add", {"amount": -1}, NET))
    data = bytes(range(256)) * 37
    digest = transport.put_blob(data, account=alice, network=NET)
    assert transport.get_blob(digest) == data


def test_memory_counts_what_http_counts(tmp_path, alice):
    memory = MemoryTransport(make_endpoint(tmp_path / "m"))
    _exchange(memory, alice)
    with ServerThread(make_app(make_endpoint(tmp_path / "h"))) as server:
        http = HttpTransport(server.url, retries=1, backoff=0.01)
        _exchange(http, alice)
        http.close()
    m, h = memory.traffic, http.traffic
    assert m.blob_sent == h.blob_sent == m.blob_received == h.blob_received == 256 * 37
    assert m.requests == h.requests == 5
    # envelopes carry fresh nonces and timestamps, so sizes may differ by a few digits
    assert abs(m.sent - h.sent) <= 16 and abs(m.received - h.received) <= 16
    assert (memory.bytes_sent, memory.bytes_received) == (m.sent, m.received)
    assert (http.bytes_sent, http.bytes_received) == (h.sent, h.received)
    assert http.head_bytes > 0  # HTTP heads are counted apart from the payload


def test_memory_link_seconds_follow_the_counts(tmp_path, alice):
    link = Link(up_mbit=8.0, down_mbit=80.0, latency_ms=25.0)
    t = MemoryTransport(make_endpoint(tmp_path), link)
    _exchange(t, alice)
    c = t.traffic
    expected = c.requests * 0.025 + c.sent * 8 / 8e6 + c.received * 8 / 80e6
    assert c.link_seconds == pytest.approx(expected, rel=1e-12)
    assert c.link_seconds == pytest.approx(link.transfer_s(c.sent, c.received, c.requests))
    assert MemoryTransport(make_endpoint(tmp_path / "none")).traffic.link_seconds == 0.0


def test_link_arithmetic():
    link = Link(up_mbit=10, down_mbit=100, latency_ms=30)
    assert link.upload_s(1_250_000) == pytest.approx(1.0)  # 10 Mbit
    assert link.download_s(1_250_000) == pytest.approx(0.1)
    assert link.transfer_s(1_250_000, 1_250_000, requests=2) == pytest.approx(1.16)
    assert HOME.up_mbit == 10.0


@pytest.mark.parametrize(
    "kw",
    [
        {"up_mbit": 0, "down_mbit": 1},
        {"up_mbit": -1, "down_mbit": 1},
        {"up_mbit": math.inf, "down_mbit": 1},
        {"up_mbit": 1, "down_mbit": math.nan},
        {"up_mbit": 1, "down_mbit": 1, "latency_ms": -1},
        {"up_mbit": 1, "down_mbit": 1, "latency_ms": 1e9},
    ],
)
def test_link_refuses_impossible_values(kw):
    with pytest.raises(ValueError):
        Link(**kw)


def test_link_refuses_bad_counts():
    with pytest.raises(ValueError):
        HOME.upload_s(-1)
    with pytest.raises(ValueError):
        HOME.download_s(math.nan)
    with pytest.raises(ValueError):
        HOME.transfer_s(1, 1, requests=-1)


def test_round_time_is_the_slowest_serial_provider():
    slow = Link(up_mbit=1, down_mbit=10, latency_ms=0)
    fast = Link(up_mbit=100, down_mbit=100, latency_ms=0)
    a = ProviderRound(download_bytes=1_250_000, upload_bytes=125_000, compute_s=2.0, link=slow, requests=0)
    b = ProviderRound(download_bytes=1_250_000, upload_bytes=125_000, compute_s=2.0, link=fast, requests=0)
    assert a.seconds() == pytest.approx(1.0 + 2.0 + 1.0)  # download 1 s, compute, upload 1 s
    assert round_seconds([a, b]) == pytest.approx(a.seconds())
    assert round_seconds([]) == 0.0
    # a thin hub link: sending 2 checkpoints and receiving 2 updates takes longer than anyone
    hub = Link(up_mbit=0.5, down_mbit=0.5)
    assert round_seconds([a, b], hub=hub) == pytest.approx((2 * 1_250_000 + 2 * 125_000) * 8 / 0.5e6)
    with pytest.raises(ValueError):
        ProviderRound(1, 1, compute_s=-1.0).seconds()


def test_time_to_target():
    assert time_to_target([1.0, 2.0, 3.0], [0.5, 0.8, 0.9], 0.8) == pytest.approx(3.0)
    assert time_to_target([1.0, 2.0], [0.5, 0.6], 0.8) is None
    assert time_to_target([1.0, 2.0], [30.0, 10.0], 12.0, higher=False) == pytest.approx(3.0)
    assert time_to_target([1.0, 2.0], [None, math.nan], 0.0) is None
    with pytest.raises(ValueError):
        time_to_target([1.0], [0.5, 0.6], 0.5)


def test_traffic_records_add_subtract_and_round_trip():
    a = Traffic(10, 20, 5, 6, 2, 0.5)
    b = Traffic(1, 2, 0, 1, 1, 0.25)
    assert a.add(b).minus(b) == a
    assert Traffic.from_json(json.loads(json.dumps(a.to_json()))) == a


@pytest.mark.parametrize(
    "data",
    [
        None,
        [],
        {"sent": 1, "received": 1, "blob_sent": 0, "blob_received": 0},  # requests missing
        {"sent": -1, "received": 1, "blob_sent": 0, "blob_received": 0, "requests": 0},
        {"sent": True, "received": 1, "blob_sent": 0, "blob_received": 0, "requests": 0},
        {"sent": 1.5, "received": 1, "blob_sent": 0, "blob_received": 0, "requests": 0},
        {"sent": 1 << 60, "received": 1, "blob_sent": 0, "blob_received": 0, "requests": 0},
        {"sent": 1, "received": 1, "blob_sent": 0, "blob_received": 0, "requests": 0, "link_seconds": "x"},
    ],
)
def test_traffic_from_json_refuses_malformed(data):
    with pytest.raises(ValueError):
        Traffic.from_json(data)


def test_read_traffic_checks_the_daemon_file(tmp_path):
    assert read_traffic(tmp_path) is None
    good = {"roles": {"data_provider": 3}, "traffic": Traffic(5, 6, 1, 2, 3).to_json()}
    (tmp_path / TRAFFIC_FILE).write_text(json.dumps(good))
    read = read_traffic(tmp_path)
    assert read is not None and read.roles == {"data_provider": 3} and read.traffic.sent == 5
    for bad in ({"roles": {"x": -1}, "traffic": good["traffic"]}, {"roles": [], "traffic": {}}, "[1"):
        (tmp_path / TRAFFIC_FILE).write_text(bad if isinstance(bad, str) else json.dumps(bad))
        with pytest.raises(ValueError):
            read_traffic(tmp_path)
    (tmp_path / TRAFFIC_FILE).write_bytes(b" " * (2 << 20))
    with pytest.raises(ValueError):
        read_traffic(tmp_path)
