"""Issue 12, findings 6, 7 and 10: an outsider cannot exhaust a hub's memory, disk, threads or rate.

Each test runs a real hub over HTTP on loopback (as ``deai hub`` does) and attacks it as an
outsider would: large read replies (the answer cache), anonymous, unfunded and over-quota uploads
(the disk), uploads that never finish (threads and descriptors), a one-sender flood (the rate),
future-stamped envelopes (the replay cache's horizon), clients that hang up mid-transfer (the log),
and an unbounded page size. Funds are conserved after every test that moves any.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import os
import select
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from deai.core.accounts import Account
from deai.core.blobs import BlobStore
from deai.core.envelope import Envelope, EnvelopeVerifier, ReplayCache, now_ms
from deai.core.errors import ReplayedNonce, StaleTimestamp
from deai.ledger.config import NetworkConfig
from deai.ledger.sqlite import SqliteLedger
from deai.ledger.txs import Mint
from deai.net.endpoint import Endpoint
from deai.net.http import AUTH_HEADER, SERVER_LIMITS, HttpTransport, ServerThread, make_app
from deai.net.limits import RateLimits
from deai.net.memory import MemoryTransport
from deai.net.transport import RemoteError, upload_envelope
from deai.node.hub.kv import KV
from deai.node.hub.server import MAX_PAGE, Hub
from deai.node.participant.client import HubClient
from deai.node.user.submit import make_task, submit_task
from deai.protocol.task.spec import Windows

NET = "adv-res"
MINTER = Account.from_seed("res-minter", 0)
HUB = Account.from_seed("res-hub", 0)
FUNDED = Account.from_seed("res-funded", 0)  # holds a balance: may upload within its quota
OUTSIDER = Account.from_seed("res-outsider", 0)  # holds nothing
HONEST = Account.from_seed("res-honest", 0)
QUOTA = 256 << 10
CREATOR = Account.from_seed("res-creator", 0)


@pytest.fixture(scope="module")
def bundle():
    """A small honest task (digits), as a creator would submit it."""
    from deai.learn.data import prepare

    windows = Windows(join_ms=60_000, train_ms=60_000, commit_ms=15_000, reveal_ms=15_000, secagg_ms=15_000)
    recipe = dict(rounds=2, budget=6_000, min_providers=2, max_providers=4, windows=windows)
    return make_task(prepare("digits", seed=0).val, **recipe)


@dataclasses.dataclass
class Served:
    hub: Hub
    ledger: SqliteLedger
    url: str
    server: ServerThread
    minted: int

    def client(self, account: Account, **kw) -> HubClient:
        return HubClient(HttpTransport(self.url, **kw), NET, account)

    def conserved(self) -> None:
        supply = self.ledger.supply()
        self.ledger.check_invariants()
        assert supply["minted"] == self.minted


@contextlib.contextmanager
def serve(root, *, entries: int = 0, app_kw: dict | None = None, **hub_kw) -> Iterator[Served]:
    """A hub over HTTP whose ledger mints 1,000 to FUNDED and 1 to each of ``entries`` others."""
    ledger = SqliteLedger(root / "ledger.sqlite", NetworkConfig(minter=MINTER.address, network=NET))
    mints = [Mint(to=FUNDED.address, amount=1_000)]
    mints += [Mint(to=Account.from_seed("res-filler", i).address, amount=1) for i in range(entries)]
    for result in ledger.submit_many([ledger.sign(MINTER, tx, nonce=i) for i, tx in enumerate(mints)]):
        assert not isinstance(result, Exception), result
    hub_kw.setdefault("upload_quota", QUOTA)
    hub = Hub(ledger, BlobStore(root / "blobs", max_bytes=4 << 20), HUB, kv=KV(root / "kv"), **hub_kw)
    with ServerThread(make_app(hub.endpoint, **(app_kw or {}))) as server:
        yield Served(hub, ledger, server.url, server, 1_000 + entries)
    ledger.close()


def signed_put(
    url: str, account: Account, data: bytes, *, size: int | None = None, digest: str | None = None
):
    digest = digest or hashlib.sha256(data).hexdigest()
    env = upload_envelope(account, NET, digest, len(data) if size is None else size)
    return httpx.put(
        f"{url}/v1/blobs/{digest}", content=data, headers={AUTH_HEADER: env.to_bytes()}, timeout=30
    )


# -- finding 6: memory ---------------------------------------------------------------------------------


def test_large_read_replies_are_not_kept(tmp_path):
    """300 ``ledger.entries`` calls added 682 MB to the hub: reads are no longer kept for retries."""
    with serve(tmp_path, entries=MAX_PAGE + 50) as s:
        reader = s.client(OUTSIDER)
        served = 0
        for _ in range(30):
            answer = reader.call("ledger.entries", {"since": 0, "limit": 10**9})
            assert len(answer["entries"]) == MAX_PAGE  # the page is bounded whatever the limit asked
            served += len(str(answer))
        assert served > 10 << 20  # ~20 MB of replies went out ...
        assert s.hub.endpoint.answer_bytes == 0  # ... and none of them stays in the hub
        # an identical retry of a read is answered again (read again), not refused as a replay
        env = Envelope.seal(OUTSIDER, "ledger.events", {"since": 0, "limit": 5}, NET)
        first = httpx.post(f"{s.url}/v1/envelope", content=env.to_bytes())
        again = httpx.post(f"{s.url}/v1/envelope", content=env.to_bytes())
        assert first.status_code == again.status_code == 200 and first.json() == again.json()
        page = reader.call("ledger.events", {"since": 0, "limit": 10**6})
        assert len(page["events"]) == page["next"] == MAX_PAGE  # a client pages on with `next`
        s.conserved()


def test_kept_answers_are_bounded_by_bytes(tmp_path):
    """State-changing answers are kept for retries within a byte budget; one too large is not kept."""
    endpoint = Endpoint(NET, {}, BlobStore(tmp_path), answer_cache_bytes=64 << 10)
    endpoint.route("big")(lambda env: {"pad": "x" * env.body["n"]})
    transport = MemoryTransport(endpoint)
    for _ in range(50):
        transport.send(Envelope.seal(OUTSIDER, "big", {"n": 3_000}, NET))
    assert 0 < endpoint.answer_bytes <= 64 << 10
    kept = endpoint.answer_bytes
    huge = Envelope.seal(OUTSIDER, "big", {"n": 100_000}, NET)
    assert len(transport.send(huge)["pad"]) == 100_000
    assert endpoint.answer_bytes == kept
    retry = Envelope.seal(OUTSIDER, "big", {"n": 3_000}, NET)
    assert transport.send(retry) == transport.send(retry)  # a retry still gets the first answer


# -- finding 7: disk -----------------------------------------------------------------------------------


def test_uploads_need_a_signed_authorization_from_a_funded_identity(tmp_path):
    with serve(tmp_path) as s:
        data = os.urandom(50_000)
        digest = hashlib.sha256(data).hexdigest()
        anonymous = httpx.put(f"{s.url}/v1/blobs/{digest}", content=data)
        assert anonymous.status_code == 401
        unfunded = signed_put(s.url, OUTSIDER, data)
        assert unfunded.status_code == 403 and "may not upload" in unfunded.json()["reason"]
        other = hashlib.sha256(b"other").hexdigest()
        env = upload_envelope(FUNDED, NET, other, len(data))  # authorizes another digest
        r = httpx.put(f"{s.url}/v1/blobs/{digest}", content=data, headers={AUTH_HEADER: env.to_bytes()})
        assert r.status_code == 400
        assert (
            signed_put(s.url, FUNDED, data, size=len(data) - 1).status_code == 413
        )  # over its declared size
        assert digest not in s.hub.store and not any((tmp_path / "blobs" / "tmp").iterdir())
        # the in-memory transport runs the same rule (one engine)
        with pytest.raises(RemoteError) as err:
            MemoryTransport(s.hub.endpoint).put_blob(data, account=OUTSIDER, network=NET)
        assert err.value.status == 403
        # a funded identity uploads within its quota; the hub's own account has no quota
        assert s.client(FUNDED).put_blob(data) == digest
        assert s.hub.store.get(digest) == data
        assert s.hub.store.uploads.used(FUNDED.address) == len(data)
        s.conserved()


def test_unreferenced_uploads_are_quota_bound_and_collected_after_the_ttl(tmp_path, bundle):
    with serve(tmp_path, upload_ttl_s=3600) as s:
        s.ledger.submit_many([s.ledger.sign(MINTER, Mint(to=CREATOR.address, amount=10_000), nonce=1)])
        s.minted += 10_000
        funded = s.client(FUNDED)
        junk = [os.urandom(100_000) for _ in range(3)]
        kept = [funded.put_blob(junk[0]), funded.put_blob(junk[1])]
        with pytest.raises(RemoteError) as err:  # a third would be over the 256 KiB quota
            funded.put_blob(junk[2])
        assert err.value.status == 403 and "quota" in err.value.reason
        # a task the hub adopts: its spec, initial model and validation data become referenced
        task = submit_task(s.client(CREATOR), CREATOR, bundle, coordinator=HUB.address)
        s.hub.tick()
        assert task in s.hub.coordinators
        pinned = (bundle.spec.digest, bundle.spec.init, bundle.spec.validation)
        assert s.hub.store.uploads.used(CREATOR.address) == 0  # referenced: not charged
        # an hour later the unreferenced uploads are gone, and the quota is free again
        s.hub.endpoint.clock = lambda: now_ms() + 3_601_000
        s.hub.endpoint._last_collect = None
        s.hub.tick()
        assert all(d not in s.hub.store for d in kept)
        assert all(d in s.hub.store for d in pinned)
        assert httpx.get(f"{s.url}/v1/blobs/{kept[0]}").status_code == 404
        assert s.hub.store.uploads.used(FUNDED.address) == 0
        s.hub.endpoint.clock = now_ms
        assert funded.put_blob(junk[2]) == hashlib.sha256(junk[2]).hexdigest()
        s.conserved()


def test_stalled_bodies_are_cut_off_and_the_hub_keeps_answering(tmp_path):
    """600 slow uploads held 342 threads and 941 descriptors: now a few uploads run at once (the
    rest get 503 at once), and every body -- upload or envelope -- must keep pace (else 408)."""
    # (a large quota: with a small one the quota reservations alone would refuse most, 403)
    with serve(tmp_path, upload_quota=1 << 30, app_kw={"body_timeout_s": 1.0}) as s:
        policy = s.hub.endpoint.uploads
        s.hub.endpoint.uploads = dataclasses.replace(
            policy, max_concurrent=4, base_timeout_s=1.0, min_rate=10 << 20
        )
        host, port = s.server.host, s.server.port
        data = b"x" * 200_000
        uploads, envelopes = [], []
        for _ in range(12):
            digest = hashlib.sha256(os.urandom(8)).hexdigest()
            env = upload_envelope(FUNDED, NET, digest, len(data))
            head = (
                f"PUT /v1/blobs/{digest} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(data)}\r\n"
                f"{AUTH_HEADER}: {env.to_bytes().decode()}\r\n\r\n"
            ).encode()
            sock = socket.create_connection((host, port), timeout=10)
            sock.sendall(head + data[:100])  # ... and never the rest
            uploads.append(sock)
        for _ in range(4):  # envelopes that announce 1 MB and trickle a few bytes
            sock = socket.create_connection((host, port), timeout=10)
            sock.sendall(b"POST /v1/envelope HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n{")
            envelopes.append(sock)
        socks = uploads + envelopes
        try:
            honest = s.client(HONEST, retries=0).info()
            assert honest["network"] == NET
            codes, deadline = {}, time.monotonic() + 15
            while len(codes) < len(socks) and time.monotonic() < deadline:
                for sock in envelopes:
                    if sock not in codes:
                        with contextlib.suppress(OSError):
                            sock.send(b" ")
                ready, _, _ = select.select([x for x in socks if x not in codes], [], [], 0.3)
                for sock in ready:
                    reply = sock.recv(200).decode(errors="replace")
                    codes[sock] = int(reply.split()[1]) if reply.startswith("HTTP/") else None
            assert len(codes) == len(socks), f"{len(socks) - len(codes)} stalled requests still held"
            assert sorted({codes[x] for x in uploads}) == [408, 503]
            assert {codes[x] for x in envelopes} == {408}
        finally:
            for sock in socks:
                sock.close()
        time.sleep(0.2)
        assert s.hub.endpoint._active_uploads == 0 and not any((tmp_path / "blobs" / "tmp").iterdir())
        assert s.client(HONEST, retries=0).info()["network"] == NET
        assert s.server.server.config.limit_concurrency == SERVER_LIMITS["limit_concurrency"]
        s.conserved()


def test_request_heads_sent_a_byte_at_a_time_are_cut_off(tmp_path):
    """Slowloris: heads that never end held a connection each, forever (uvicorn's keep-alive timer
    restarts with every byte), until the connection limit turned every honest client away."""
    endpoint = Endpoint(NET, {}, BlobStore(tmp_path))
    endpoint.route("hello")(lambda env: {"hi": env.sender})
    with ServerThread(make_app(endpoint), head_timeout_s=1.0, limits={"limit_concurrency": 8}) as server:
        socks = [socket.create_connection((server.host, server.port), timeout=10) for _ in range(6)]
        for sock in socks:
            sock.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n")
        closed, deadline = set(), time.monotonic() + 10
        while len(closed) < len(socks) and time.monotonic() < deadline:
            for sock in socks:  # a header byte every 0.2 s: never idle, never complete
                if sock not in closed:
                    with contextlib.suppress(OSError):
                        sock.send(b"X")
            ready, _, _ = select.select([x for x in socks if x not in closed], [], [], 0.2)
            for sock in ready:
                with contextlib.suppress(OSError):
                    if sock.recv(100) == b"":
                        closed.add(sock)
        for sock in socks:
            sock.close()
        assert len(closed) == len(socks), f"{len(socks) - len(closed)} slow heads still held"
        # a kept-alive connection gets the same deadline for its next head; a whole one is served
        transport = HttpTransport(server.url, retries=0)
        assert transport.send(Envelope.seal(HONEST, "hello", {}, NET))["hi"] == HONEST.address
        time.sleep(1.5)  # (an idle kept-alive connection is closed; the client reconnects)
        assert transport.send(Envelope.seal(HONEST, "hello", {}, NET))["hi"] == HONEST.address
        transport.close()


# -- finding 10: rate, replay horizon, disconnects -----------------------------------------------------


def _post_all(http: httpx.Client, envelopes: list[bytes]) -> list[int]:
    return [http.post("/v1/envelope", content=raw).status_code for raw in envelopes]


def test_floods_get_429_while_a_funded_sender_is_served(tmp_path):
    """A 2,000-request flood made rounds 2.3x slower: one sender, many fresh keys (free for an
    outsider) and unparseable bytes are each cut to a rate, and a funded sender is still served."""
    limits = RateLimits(
        sender_rate=5, sender_burst=20, peer_rate=5, peer_burst=20,
        unfunded_rate=5, unfunded_burst=30, refused_rate=5, refused_burst=20,
    )  # fmt: skip
    with serve(tmp_path, limits=limits) as s, httpx.Client(base_url=s.url, timeout=30) as http:
        # one sender
        flood = [Envelope.seal(OUTSIDER, "hub.info", {}, NET) for _ in range(60)]
        codes = _post_all(http, [e.to_bytes() for e in flood])
        assert codes.count(429) >= 30 and set(codes) == {200, 429}
        env = flood[codes.index(429)]
        r = http.post("/v1/envelope", content=env.to_bytes())
        assert r.status_code == 429 and r.json()["error"] == "RateLimited"
        assert int(r.headers["Retry-After"]) >= 1 and 0 < r.json()["retry_after"] <= 1
        assert s.client(FUNDED, retries=0).info()["network"] == NET  # another sender is served
        # the refused envelope was not recorded: sent again once the buckets refill, it is served
        time.sleep(6)
        assert http.post("/v1/envelope", content=env.to_bytes()).status_code == 200
        # the transport waits out a 429 instead of failing
        assert s.client(OUTSIDER, retries=8).info()["network"] == NET
        # a fresh key per request: every sender without funds shares one bucket
        time.sleep(6)
        sybils = [Envelope.seal(Account.create(), "hub.info", {}, NET).to_bytes() for _ in range(60)]
        codes = _post_all(http, sybils)
        assert codes.count(429) >= 20 and codes[0] == 200
        assert s.client(FUNDED, retries=0).info()["network"] == NET
        # bytes refused before any sender is known: the address is cut off before parsing
        forged = Envelope.from_dict(
            Envelope.seal(OUTSIDER, "hub.info", {}, NET).to_dict() | {"body": {"x": 1}}
        )
        codes = _post_all(http, [b"{not json"] * 20 + [forged.to_bytes()] * 20)
        assert codes[:20] == [400] * 20 and codes[-1] == 429
        time.sleep(1.5)
        assert http.post("/v1/envelope", content=forged.to_bytes()).status_code == 401
        # unsigned routes are limited per client address
        health = [http.get("/v1/health").status_code for _ in range(40)]
        assert 429 in health and health[0] == 200
        s.conserved()


def test_future_stamped_envelopes_cannot_make_honest_ones_stale():
    """Envelopes stamped in the future pushed the replay cache's horizon past honest ones."""
    now = 1_700_000_000_000
    verifier = EnvelopeVerifier(NET, {"x"}, replay_cache=ReplayCache(max_entries=20), window_s=300)
    with pytest.raises(StaleTimestamp):  # beyond the 30 s future skew (inside the 300 s past window)
        verifier.verify(Envelope.seal(OUTSIDER, "x", {}, NET, timestamp=now + 60_000), now=now)
    for i in range(100):  # fill the cache with envelopes stamped as far ahead as allowed
        verifier.verify(Envelope.seal(OUTSIDER, "x", {}, NET, nonce=i, timestamp=now + 29_000), now=now)
    assert verifier.replay_cache.horizon < now
    for i in range(5):  # honest envelopes stamped now (or by a clock a little fast) are still accepted
        verifier.verify(Envelope.seal(HONEST, "x", {}, NET, nonce=i, timestamp=now + i), now=now)
    for i in range(100):  # and replays stay refused
        with pytest.raises((ReplayedNonce, StaleTimestamp)):
            verifier.verify(Envelope.seal(OUTSIDER, "x", {}, NET, nonce=i, timestamp=now + 29_000), now=now)


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_clients_that_hang_up_mid_transfer_log_no_traceback(tmp_path):
    with serve(tmp_path) as s:
        records = _Records()
        logging.getLogger("uvicorn.error").addHandler(records)  # after uvicorn configured its logging
        try:
            blob = os.urandom(3 << 20)
            digest = s.client(FUNDED).put_blob(blob[: 200 << 10])
            host, port = s.server.host, s.server.port
            for _ in range(3):  # hang up mid-download
                with socket.create_connection((host, port)) as sock:
                    sock.sendall(f"GET /v1/blobs/{digest} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                    sock.recv(1000)
            big = hashlib.sha256(blob).hexdigest()
            for _ in range(3):  # hang up mid-upload
                env = upload_envelope(FUNDED, NET, big, len(blob))
                with socket.create_connection((host, port)) as sock:
                    sock.sendall(
                        f"PUT /v1/blobs/{big} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(blob)}\r\n".encode()
                        + f"{AUTH_HEADER}: ".encode()
                        + env.to_bytes()
                        + b"\r\n\r\n"
                        + blob[:300_000]
                    )
                    time.sleep(0.3)
            time.sleep(0.5)
            assert s.client(HONEST, retries=0).info()["network"] == NET
        finally:
            logging.getLogger("uvicorn.error").removeHandler(records)
        tracebacks = [r.getMessage() for r in records.records if r.exc_info]
        assert not tracebacks
        assert s.hub.endpoint._active_uploads == 0 and big not in s.hub.store
        s.conserved()


def test_a_flood_of_bad_request_heads_writes_a_line_not_a_line_each(tmp_path):
    """uvicorn logs a warning per malformed request head or per connection over its limit: any
    client could fill the hub's disk through its log. Each kind is now logged once a minute."""
    endpoint = Endpoint(NET, {}, BlobStore(tmp_path))
    with ServerThread(make_app(endpoint)) as server:
        records = _Records()
        logging.getLogger("uvicorn.error").addHandler(records)
        try:
            for _ in range(30):
                with socket.create_connection((server.host, server.port), timeout=10) as sock:
                    sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
                    sock.recv(200)
            assert httpx.get(f"{server.url}/v1/health", timeout=10).status_code == 200
        finally:
            logging.getLogger("uvicorn.error").removeHandler(records)
    warnings = [r for r in records.records if r.levelno >= logging.WARNING]
    assert len(warnings) <= 1, [r.getMessage() for r in warnings]


def test_a_handler_bug_hit_again_and_again_logs_one_traceback_a_minute(tmp_path, caplog):
    endpoint = Endpoint(NET, {}, BlobStore(tmp_path))
    endpoint.route("crash")(lambda env: 1 / 0)
    transport = MemoryTransport(endpoint)
    with caplog.at_level(logging.ERROR, logger="deai.net.endpoint"):
        for _ in range(25):
            with pytest.raises(RemoteError) as err:
                transport.send(Envelope.seal(OUTSIDER, "crash", {}, NET))
            assert err.value.status == 500  # every time refused, the endpoint keeps serving
    assert len([r for r in caplog.records if r.exc_info]) == 1


def test_collection_keeps_everything_a_finished_task_refers_to(tmp_path):
    """A whole task over the in-memory network (the same endpoint), then collection an hour later:
    every blob the ledger refers to (task data, checkpoints, job inputs, revealed outputs, the
    model's document) is still there and the model still resolves; only unreferenced junk went."""
    from deai.learn.data import prepare
    from deai.learn.partition import partition
    from deai.node.launch.inprocess import LocalNetwork
    from deai.node.participant.served import resolve_model

    splits = prepare("digits", seed=0)
    net = LocalNetwork(tmp_path, network="adv-gc")
    providers = [Account.from_seed("gc-p", i) for i in range(3)]
    computes = [Account.from_seed("gc-c", i) for i in range(3)]
    net.fund([*providers, *computes, CREATOR, net.hub_account], 100_000)
    parts = partition(splits.train.y, len(providers), "iid", seed=0)
    datasets = {p.address: splits.train.subset(parts[i]) for i, p in enumerate(providers)}
    net.add_daemon("data", {"data_provider": providers}, options={"datasets": datasets})
    net.add_daemon("compute", {"compute_provider": computes})
    junk = net.client(CREATOR).put_blob(os.urandom(10_000))
    task = net.submit(
        CREATOR, make_task(splits.val, rounds=1, budget=6_000, min_providers=2, max_providers=3)
    )
    net.run(net.task_done(task))
    status = net.status(task)
    assert status.phase == "done", status
    referenced = {d.removeprefix("0x") for d in _referenced(net.ledger)}
    net.hub.endpoint.clock = lambda: now_ms() + 2 * 3_600_000
    gone = set(net.hub.endpoint.collect(force=True))
    assert junk in gone and not gone & referenced
    assert all(d in net.store for d in referenced)
    resolve_model(net.ledger, net.store, status.model)
    net.ledger.check_invariants()


def _referenced(ledger) -> list[str]:
    """Every blob digest the ledger's events name (directly or through a task, job or model)."""
    out = []
    for e in ledger.events(0, None):
        d = e.data
        if e.kind == "checkpoint":
            out.append(d["checkpoint"])
        elif e.kind == "revealed":
            out.append(d["digest"])
        elif e.kind == "job_registered":
            out += ledger.job(d["job"]).inputs
        elif e.kind == "model_registered":
            out.append(ledger.model(d["model"]).document)
        elif e.kind == "task_created":
            out.append(ledger.task(d["task"]).params)
    return out
