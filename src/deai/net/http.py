"""The HTTP transport: a FastAPI app around an Endpoint, and an httpx client.

Routes (all answers are JSON; refusals are ``{"error": <exception name>, "reason": <text>}``):

=============================  ===========================================================
``POST /v1/envelope``          a signed envelope's wire bytes -> the handler's answer
``PUT  /v1/blobs/{digest}``    streaming upload, authorized by a signed ``blob.put`` envelope
                               ``{digest, size}`` (its wire bytes, canonical JSON) in the
                               ``X-Deai-Envelope`` header; refused unless the bytes hash to
                               ``digest`` and fit the size it declares
``GET  /v1/blobs/{digest}``    streaming download (the client re-hashes what it receives)
``GET  /v1/health``            ``{"network", "requests", "bytes_in", "bytes_out"}``
``POST <alias>``               typed aliases of ``/v1/envelope`` (``routes=``), e.g. ``/v1/infer``
=============================  ===========================================================

The client retries connection failures and 5xx answers with exponential backoff, and 429
answers after their ``Retry-After``. Retrying is safe: an identical envelope sent again gets its
first answer back (see ``Endpoint``), and blob uploads are idempotent by content address (each
attempt is authorized by a freshly signed envelope). TLS: pass certificate files to
:class:`ServerThread` and ``verify=<CA file>`` to :class:`HttpTransport`.

Resources a client can hold are bounded: every request body must keep pace (its first n bytes
within ``body_timeout_s + n / min_rate`` seconds, else 408), uploads are limited in number
(:class:`~deai.net.endpoint.UploadPolicy`), unsigned routes are rate limited per client address,
and uvicorn runs with a connection limit (503 past it), a keep-alive timeout, a bounded header
size (:data:`SERVER_LIMITS`) and a deadline on each request head (:data:`HEAD_TIMEOUT_S`). A
client that disconnects mid-request costs one debug line, and uvicorn's warnings that any client
can trigger are logged at most once a minute per kind (:data:`THROTTLE`).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import socket
import ssl
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI, Request
from fastapi.concurrency import iterate_in_threadpool, run_in_threadpool
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.requests import ClientDisconnect
from uvicorn.protocols.http.h11_impl import H11Protocol

from deai.core.accounts import Account
from deai.core.blobs import check_digest
from deai.core.encoding import parse_json
from deai.core.envelope import Envelope
from deai.core.errors import BlobNotFound, BodyTooLarge, DeaiError, EncodingError
from deai.net.endpoint import Endpoint, Reply, ServiceError
from deai.net.links import Traffic
from deai.net.transport import RemoteError, Transport, upload_envelope, verified

__all__ = ["AUTH_HEADER", "SERVER_LIMITS", "HttpTransport", "ServerThread", "make_app"]

log = logging.getLogger(__name__)

CHUNK = 1 << 20  # blob bytes move between the network and the store in pieces of this size
MAX_ANSWER = 64 << 20  # the largest JSON answer a client parses (a page of log entries is far less)


def _answer(response: httpx.Response) -> dict[str, Any]:
    """The other side's JSON answer, parsed like any foreign bytes (bounded size, depth and numbers,
    :func:`~deai.core.encoding.parse_json`) and required to be an object: a hostile or broken hub
    gets a :class:`RemoteError` ``MalformedAnswer`` from its client, never a crash."""
    try:
        body = parse_json(response.content, max_bytes=MAX_ANSWER, what="answer")
    except EncodingError as exc:
        raise RemoteError(response.status_code, "MalformedAnswer", str(exc)[:500]) from None
    if not isinstance(body, dict):
        raise RemoteError(response.status_code, "MalformedAnswer", "an answer must be a JSON object")
    return body


AUTH_HEADER = "X-Deai-Envelope"  # a blob.put envelope's wire bytes (canonical JSON)
# uvicorn's limits: connections (and tasks) past limit_concurrency get 503 at once instead of a
# thread or a descriptor each; idle kept-alive connections close after 5 s; a request head (the
# line and headers, with a ~600-byte upload authorization) may not exceed 32 KiB.
SERVER_LIMITS: dict[str, Any] = {
    "limit_concurrency": 512,
    "timeout_keep_alive": 5,
    "h11_max_incomplete_event_size": 32 << 10,
}
MAX_RETRY_AFTER = 10.0  # the client waits at most this long for one 429
HEAD_TIMEOUT_S = 10.0  # a request line and headers must arrive within this (see _HeadTimeoutH11)


def _json(reply: Reply) -> JSONResponse:
    response = JSONResponse(reply.body, status_code=reply.status)
    if reply.status == 429:
        response.headers["Retry-After"] = str(max(1, math.ceil(reply.body.get("retry_after", 1))))
    return response


def _retry_after(response: httpx.Response) -> float:
    """How long a 429 says to wait: the body's ``retry_after`` (fractional seconds: a sender just
    over its rate waits milliseconds, not the header's whole second), else ``Retry-After``, else
    1 s; at most MAX_RETRY_AFTER."""
    try:
        wait = response.json().get("retry_after")
        if isinstance(wait, int | float) and not isinstance(wait, bool):
            return min(max(float(wait), 0.0), MAX_RETRY_AFTER)
    except (ValueError, AttributeError):
        pass
    try:
        return min(float(response.headers.get("retry-after", 1)), MAX_RETRY_AFTER)
    except ValueError:
        return 1.0


async def _paced(request: Request, base_s: float, min_rate: float) -> AsyncIterator[bytes]:
    """The body's chunks, as long as it keeps pace: ``base_s`` seconds of grace, then on average at
    least ``min_rate`` bytes/s since the start (so a body of n bytes takes at most ``base_s +
    n / min_rate``, and one that stalls or trickles is cut off whatever length it announced).
    Raises TimeoutError when it falls behind."""
    start, received = time.monotonic(), 0
    chunks = request.stream().__aiter__()
    while True:
        left = start + base_s + received / min_rate - time.monotonic()
        if left <= 0:
            raise TimeoutError
        try:
            chunk = await asyncio.wait_for(chunks.__anext__(), left)
        except StopAsyncIteration:
            return
        received += len(chunk)
        yield chunk


def _peer(request: Request) -> str:
    """The client's address (the key of its unsigned and refused-request buckets)."""
    return request.client.host if request.client else "?"


class _Gone(Exception):
    """The client went away mid-request: there is nobody to answer."""


def make_app(
    endpoint: Endpoint,
    *,
    title: str = "deai",
    routes: dict[str, str] | None = None,
    body_timeout_s: float = 10.0,
    min_rate: int = 256 << 10,
) -> FastAPI:
    """A FastAPI app serving ``endpoint`` over HTTP.

    ``routes`` adds typed aliases of ``POST /v1/envelope``: ``{"/v1/infer": "infer.request"}``
    serves ``POST /v1/infer``, which accepts only envelopes of that message type. A request body
    must keep pace: after ``body_timeout_s`` seconds, at least ``min_rate`` bytes/s on average
    (uploads: the endpoint's :class:`~deai.net.endpoint.UploadPolicy` says), else 408.
    """
    app = FastAPI(title=title, docs_url=None, redoc_url=None)
    max_envelope = endpoint.verifier.max_body_bytes + 4096

    def gone(request: Request) -> Response:
        # Nothing can be sent back; one debug line instead of an ASGI traceback per disconnect.
        log.debug("client %s went away during %s %s", request.client, request.method, request.url.path)
        return Response(status_code=499)

    async def read_body(request: Request) -> bytes | JSONResponse:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_envelope:
            return _json(endpoint._refuse(BodyTooLarge(f"request is {declared} bytes, over {max_envelope}")))
        body = bytearray()
        try:
            async for chunk in _paced(request, body_timeout_s, min_rate):
                body.extend(chunk)
                if len(body) > max_envelope:
                    return _json(endpoint._refuse(BodyTooLarge(f"request is over {max_envelope} bytes")))
        except TimeoutError:
            reason = (
                f"the body came slower than {min_rate} bytes/s after {body_timeout_s:g}s ({len(body)} came)"
            )
            return _json(endpoint._refuse(ServiceError(reason, 408)))
        except ClientDisconnect:
            raise _Gone from None
        return bytes(body)

    @app.exception_handler(_Gone)
    async def client_gone(request: Request, exc: _Gone) -> Response:
        return gone(request)

    @app.post("/v1/envelope")
    async def envelope(request: Request) -> JSONResponse:
        body = await read_body(request)
        if isinstance(body, JSONResponse):
            return body
        return _json(await run_in_threadpool(endpoint.dispatch, body, peer=_peer(request)))

    def typed(message_type: str):
        async def handler(request: Request) -> JSONResponse:
            body = await read_body(request)
            if isinstance(body, JSONResponse):
                return body
            try:
                env = Envelope.from_bytes(body, max_bytes=max_envelope)
            except DeaiError as exc:
                return _json(endpoint._refuse(exc, _peer(request)))
            if env.type != message_type:
                reason = f"this route takes {message_type!r} envelopes, got {env.type!r}"
                return _json(endpoint._refuse(ServiceError(reason), _peer(request)))
            return _json(await run_in_threadpool(endpoint.dispatch, body, peer=_peer(request)))

        return handler

    for path, message_type in (routes or {}).items():
        app.post(path)(typed(message_type))

    @app.put("/v1/blobs/{digest}", response_model=None)
    async def put_blob(digest: str, request: Request) -> JSONResponse | Response:
        declared = request.headers.get("content-length")
        header = request.headers.get(AUTH_HEADER)
        try:
            # Starlette decodes header bytes as latin-1: encoding back gives the bytes sent.
            auth = header.encode("latin-1") if header is not None else None
            length = int(declared) if declared is not None and declared.isdigit() else None
            upload = await run_in_threadpool(endpoint.begin_upload, digest, auth, length)
        except (DeaiError, EncodingError) as exc:
            return _json(endpoint._refuse(exc))
        policy = endpoint.uploads
        assert policy is not None  # begin_upload refuses otherwise
        with upload:  # leaving it early (an error, a timeout, a disconnect) discards the partial blob
            try:
                buf = bytearray()  # hand the store big pieces, not every ~64 KiB network read
                async for chunk in _paced(request, policy.base_timeout_s, policy.min_rate):
                    buf += chunk
                    if len(buf) >= CHUNK:
                        await run_in_threadpool(upload.write, bytes(buf))
                        buf.clear()
                if buf:
                    await run_in_threadpool(upload.write, bytes(buf))
                return _json(await run_in_threadpool(upload.finish))
            except TimeoutError:
                reason = (
                    f"the upload came slower than {policy.min_rate} bytes/s after {policy.base_timeout_s:g}s"
                    f" ({upload.received + len(buf)} of {upload.declared} bytes came)"
                )
                return _json(endpoint._refuse(ServiceError(reason, 408)))
            except ClientDisconnect:
                return gone(request)
            except (DeaiError, EncodingError) as exc:
                return _json(endpoint._refuse(exc))

    @app.get("/v1/blobs/{digest}", response_model=None)
    async def get_blob(digest: str, request: Request) -> StreamingResponse | JSONResponse:
        try:
            endpoint.admit_peer(_peer(request))
            chunks = endpoint.open_blob(check_digest(digest))
        except (DeaiError, EncodingError, BlobNotFound) as exc:
            return _json(endpoint._refuse(exc))
        return StreamingResponse(iterate_in_threadpool(chunks), media_type="application/octet-stream")

    @app.get("/v1/health", response_model=None)
    async def health(request: Request) -> dict[str, Any] | JSONResponse:
        try:
            endpoint.admit_peer(_peer(request))
        except DeaiError as exc:
            return _json(endpoint._refuse(exc))
        stats = endpoint.stats
        return {
            "network": endpoint.network,
            "requests": stats.requests,
            "bytes_in": stats.bytes_in,
            "bytes_out": stats.bytes_out,
        }

    return app


class _HeadTimeoutH11(H11Protocol):
    """uvicorn's h11 protocol with a deadline on every request head: a connection that has not
    sent a whole request line and headers within ``head_timeout_s`` of opening (or of its last
    answer) is closed. uvicorn alone waits forever for a head sent a byte at a time (each byte
    cancels its keep-alive timer), so a few hundred such connections would fill
    ``limit_concurrency`` and every honest client would get 503 (slowloris)."""

    head_timeout_s = HEAD_TIMEOUT_S
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def _arm(self) -> None:
        self._disarm()
        self._head_timer = self.loop.call_later(self.head_timeout_s, self._head_overdue)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_overdue(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def handle_events(self) -> None:
        cycle = self.cycle
        super().handle_events()
        if self.cycle is not cycle:  # a whole head arrived: its request runs under the body rules
            self._disarm()

    def on_response_complete(self) -> None:
        cycle = self.cycle
        super().on_response_complete()  # (this may start a pipelined request already received)
        if self.cycle is cycle and not self.transport.is_closing():
            self._arm()  # the next head on this kept-alive connection has the same deadline

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


class _Throttle(logging.Filter):
    """Lets each kind of uvicorn warning or error (by message) through at most once per
    ``every_s``; the next one that passes says how many like it were dropped. Any client can
    trigger these (a malformed request head, the connection limit), so one line each would let a
    flood fill the disk with the log."""

    def __init__(self, every_s: float = 60.0) -> None:
        super().__init__()
        self.every_s = every_s
        self._last: dict[str, float] = {}
        self._dropped: dict[str, int] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key, now = str(record.msg)[:200], time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.every_s:
                self._dropped[key] = self._dropped.get(key, 0) + 1
                return False
            if len(self._last) > 1000:  # messages that embed foreign text: keep the table small
                self._last.clear()
            self._last[key] = now
            dropped = self._dropped.pop(key, 0)
        if dropped:
            record.msg = f"{record.msg} ({dropped} more like it dropped)"
        return True


THROTTLE = _Throttle()  # on uvicorn's error log in every ServerThread


class ServerThread:
    """Run a FastAPI app with uvicorn on a background thread (tests, embedded hubs, ``deai hub``).

    ``port=0`` picks a free port; :attr:`url` tells which. ``limits`` overrides uvicorn settings
    of :data:`SERVER_LIMITS`; a request head must arrive within ``head_timeout_s``. Use as a
    context manager.
    """

    def __init__(
        self,
        app: FastAPI,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
        limits: dict[str, Any] | None = None,
        head_timeout_s: float = HEAD_TIMEOUT_S,
    ) -> None:
        # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY on accepted connections only when the
        # listening socket says it is TCP; with proto 0 every answer waits ~40 ms for a delayed ACK
        # (Nagle: uvicorn writes the response head and body separately).
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.host, self.port = self.sock.getsockname()[:2]
        scheme = "https" if ssl_certfile else "http"
        self.url = f"{scheme}://{self.host}:{self.port}"
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            ssl_certfile=ssl_certfile,
            ssl_keyfile=ssl_keyfile,
            http=type("HeadTimeoutH11", (_HeadTimeoutH11,), {"head_timeout_s": head_timeout_s}),
            **{**SERVER_LIMITS, **(limits or {})},
        )
        self.server = uvicorn.Server(config)
        server_log = logging.getLogger("uvicorn.error")  # (configured by uvicorn.Config just now)
        if THROTTLE not in server_log.filters:
            server_log.addFilter(THROTTLE)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def start(self, timeout: float = 10.0) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("HTTP server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _head_bytes(response: httpx.Response) -> int:
    """The bytes of the request's and the answer's HTTP/1.1 heads (request and status lines,
    headers): what the wire carries beyond the payload that :class:`Traffic` counts."""
    req = response.request
    line = len(req.method) + len(req.url.raw_path) + len(b"  HTTP/1.1\r\n") + 2
    status = len(f"HTTP/1.1 {response.status_code} {response.reason_phrase}\r\n") + 2
    fields = sum(len(k) + len(v) + 4 for k, v in req.headers.raw) + sum(
        len(k) + len(v) + 4 for k, v in response.headers.raw
    )
    return line + status + fields


class HttpTransport(Transport):
    """An httpx client for one endpoint, with retries and backoff. Thread-safe (a connection pool).

    ``traffic`` counts the payload moved (as :class:`~deai.net.memory.MemoryTransport` does:
    envelopes, upload authorizations, JSON answers, blob bodies; one request per call, retries
    not counted again) and ``head_bytes`` the HTTP heads of the last attempt of each request."""

    concurrent = True

    def __init__(
        self,
        base_url: str,
        *,
        verify: bool | str = True,
        cert: str | tuple[str, str] | None = None,
        timeout: float = 30.0,
        retries: int = 4,
        backoff: float = 0.1,
    ) -> None:
        tls: bool | str | ssl.SSLContext = verify
        if isinstance(verify, str):  # a CA file: trust exactly that certificate authority
            ctx = ssl.create_default_context(cafile=verify)
            if cert is not None:
                ctx.load_cert_chain(*((cert,) if isinstance(cert, str) else cert))
            tls, cert = ctx, None
        # One client, one kept-alive connection; TCP_NODELAY so a request's head and body (written
        # separately) are not held back by Nagle's algorithm waiting for a delayed ACK.
        transport = httpx.HTTPTransport(
            verify=tls, cert=cert, socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
        )
        self.client = httpx.Client(base_url=base_url, transport=transport, timeout=timeout)
        self.retries, self.backoff = retries, backoff
        self._lock = threading.Lock()  # the byte counters, updated from several threads
        self.bytes_sent = 0
        self.bytes_received = 0
        self.traffic = Traffic()
        self.head_bytes = 0

    def _count(
        self,
        sent: int,
        received: int,
        *,
        blob_sent: int = 0,
        blob_received: int = 0,
        requests: int = 0,
        response: httpx.Response | None = None,
    ) -> None:
        heads = _head_bytes(response) if response is not None else 0
        with self._lock:
            t = self.traffic
            t.sent += sent
            t.received += received
            t.blob_sent += blob_sent
            t.blob_received += blob_received
            t.requests += requests
            self.head_bytes += heads
            self.bytes_sent, self.bytes_received = t.sent, t.received

    def _request(
        self, method: str, url: str, *, headers: Callable[[], dict[str, Any]] | None = None, **kw: Any
    ) -> httpx.Response:
        """Send with retries; ``headers()`` is called for every attempt (a fresh authorization)."""
        for attempt in range(self.retries + 1):
            pause = self.backoff * (2**attempt)
            try:
                extra = headers() if headers is not None else None
                response = self.client.request(method, url, headers=extra, **kw)
            except (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError, httpx.TimeoutException):
                if attempt == self.retries:
                    raise
            else:
                if response.status_code == 429 and attempt < self.retries:
                    # over the rate: wait as told (the refused request was not recorded)
                    pause = _retry_after(response)
                elif response.status_code < 500 or attempt == self.retries:
                    return response
            time.sleep(pause)
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _raise(response: httpx.Response) -> None:
        try:
            body = _answer(response)
        except RemoteError:
            body = {"error": "HTTPError", "reason": response.text[:200]}
        error, reason = str(body.get("error", ""))[:200], str(body.get("reason", ""))[:2000]
        raise RemoteError(response.status_code, error, reason)

    def send(self, envelope: Envelope) -> dict[str, Any]:
        raw = envelope.to_bytes()
        response = self._request("POST", "/v1/envelope", content=raw)
        self._count(len(raw), len(response.content), requests=1, response=response)
        if response.status_code >= 400:
            self._raise(response)
        return _answer(response)

    def put_blob(
        self, data: bytes | Iterable[bytes], *, account: Account, network: str, expected: str | None = None
    ) -> str:
        # The URL names the digest and the authorization the size, so both must be known first.
        content = bytes(data) if isinstance(data, bytes | bytearray) else b"".join(data)
        digest = check_digest(expected) if expected is not None else hashlib.sha256(content).hexdigest()

        auth_size = [0]

        def authorize() -> dict[str, bytes]:
            env = upload_envelope(account, network, digest, len(content)).to_bytes()
            auth_size[0] = len(env)
            return {AUTH_HEADER: env}

        response = self._request("PUT", f"/v1/blobs/{digest}", headers=authorize, content=content)
        # the authorization travels in a header: counted as payload (the memory transport sends it too)
        self._count(
            len(content) + auth_size[0],
            len(response.content),
            blob_sent=len(content),
            requests=1,
            response=response,
        )
        if response.status_code >= 400:
            self._raise(response)
        stored = _answer(response).get("digest")
        if not isinstance(stored, str):
            raise RemoteError(response.status_code, "MalformedAnswer", "the upload's answer names no digest")
        return stored

    def iter_blob(self, digest: str) -> Iterator[bytes]:
        digest = check_digest(digest)
        with self.client.stream("GET", f"/v1/blobs/{digest}") as response:
            if response.status_code >= 400:
                response.read()
                self._count(0, len(response.content), requests=1, response=response)
                self._raise(response)
            self._count(0, 0, requests=1, response=response)

            def chunks() -> Iterator[bytes]:
                for chunk in response.iter_bytes(CHUNK):
                    self._count(0, len(chunk), blob_received=len(chunk))
                    yield chunk

            yield from verified(digest, chunks())

    def close(self) -> None:
        self.client.close()
