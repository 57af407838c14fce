"""The HTTP transport: a FastAPI app around an Endpoint, and an httpx client.

Routes (all answers are JSON; refusals are ``{"error": <exception name>, "reason": <text>}``):

=============================  ===========================================================
``POST /v1/envelope``          a signed envelope's wire bytes -> the handler's answer
``PUT  /v1/blobs/{digest}``    streaming upload; refused unless the bytes hash to ``digest``
``GET  /v1/blobs/{digest}``    streaming download (the client re-hashes what it receives)
``GET  /v1/health``            ``{"network", "requests", "bytes_in", "bytes_out"}``
``POST <alias>``               typed aliases of ``/v1/envelope`` (``routes=``), e.g. ``/v1/infer``
=============================  ===========================================================

The client retries connection failures and 5xx answers with exponential backoff. Retrying is
safe: an identical envelope sent again gets its first answer back (see ``Endpoint``), and blob
uploads are idempotent by content address. TLS: pass certificate files to :class:`ServerThread`
and ``verify=<CA file>`` to :class:`HttpTransport`.
"""

from __future__ import annotations

import hashlib
import socket
import ssl
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI, Request
from fastapi.concurrency import iterate_in_threadpool, run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse

from deai.core.blobs import check_digest
from deai.core.envelope import Envelope
from deai.core.errors import BlobNotFound, BlobTooLarge, BodyTooLarge, DeaiError, EncodingError
from deai.net.endpoint import Endpoint, Reply, ServiceError
from deai.net.transport import RemoteError, Transport, verified

__all__ = ["HttpTransport", "ServerThread", "make_app"]

CHUNK = 1 << 20  # blob bytes move between the network and the store in pieces of this size


def _json(reply: Reply) -> JSONResponse:
    return JSONResponse(reply.body, status_code=reply.status)


def make_app(endpoint: Endpoint, *, title: str = "deai", routes: dict[str, str] | None = None) -> FastAPI:
    """A FastAPI app serving ``endpoint`` over HTTP.

    ``routes`` adds typed aliases of ``POST /v1/envelope``: ``{"/v1/infer": "infer.request"}``
    serves ``POST /v1/infer``, which accepts only envelopes of that message type.
    """
    app = FastAPI(title=title, docs_url=None, redoc_url=None)
    max_envelope = endpoint.verifier.max_body_bytes + 4096

    async def read_body(request: Request) -> bytes | JSONResponse:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_envelope:
            return _json(endpoint._refuse(BodyTooLarge(f"request is {declared} bytes, over {max_envelope}")))
        body = bytearray()
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > max_envelope:
                return _json(endpoint._refuse(BodyTooLarge(f"request is over {max_envelope} bytes")))
        return bytes(body)

    @app.post("/v1/envelope")
    async def envelope(request: Request) -> JSONResponse:
        body = await read_body(request)
        if isinstance(body, JSONResponse):
            return body
        return _json(await run_in_threadpool(endpoint.dispatch, body))

    def typed(message_type: str):
        async def handler(request: Request) -> JSONResponse:
            body = await read_body(request)
            if isinstance(body, JSONResponse):
                return body
            try:
                env = Envelope.from_bytes(body, max_bytes=max_envelope)
            except DeaiError as exc:
                return _json(endpoint._refuse(exc))
            if env.type != message_type:
                reason = f"this route takes {message_type!r} envelopes, got {env.type!r}"
                return _json(endpoint._refuse(ServiceError(reason)))
            return _json(await run_in_threadpool(endpoint.dispatch, body))

        return handler

    for path, message_type in (routes or {}).items():
        app.post(path)(typed(message_type))

    @app.put("/v1/blobs/{digest}")
    async def put_blob(digest: str, request: Request) -> JSONResponse:
        limit = endpoint.blobs.max_bytes
        declared = request.headers.get("content-length")
        try:
            digest = check_digest(digest)
            if limit is not None and declared is not None and declared.isdigit() and int(declared) > limit:
                raise BlobTooLarge(f"upload is {declared} bytes, over the limit of {limit}")
            writer = endpoint.blobs.writer(expected=digest)
        except (DeaiError, EncodingError) as exc:
            return _json(endpoint._refuse(exc))
        size = 0
        with writer:
            try:
                buf = bytearray()  # hand the store big pieces, not every ~64 KiB network read
                async for chunk in request.stream():
                    size += len(chunk)
                    buf += chunk
                    if len(buf) >= CHUNK:
                        await run_in_threadpool(writer.write, bytes(buf))
                        buf.clear()
                if buf:
                    await run_in_threadpool(writer.write, bytes(buf))
                stored = await run_in_threadpool(writer.finish)
            except (DeaiError, EncodingError) as exc:
                return _json(endpoint._refuse(exc))
            finally:
                endpoint.stats.bytes_in += size
        return _json(Reply(200, {"digest": stored, "size": size}))

    @app.get("/v1/blobs/{digest}", response_model=None)
    async def get_blob(digest: str) -> StreamingResponse | JSONResponse:
        try:
            chunks = endpoint.open_blob(check_digest(digest))
        except (DeaiError, EncodingError, BlobNotFound) as exc:
            return _json(endpoint._refuse(exc))
        return StreamingResponse(iterate_in_threadpool(chunks), media_type="application/octet-stream")

    @app.get("/v1/health")
    async def health() -> dict[str, Any]:
        stats = endpoint.stats
        return {
            "network": endpoint.network,
            "requests": stats.requests,
            "bytes_in": stats.bytes_in,
            "bytes_out": stats.bytes_out,
        }

    return app


class ServerThread:
    """Run a FastAPI app with uvicorn on a background thread (tests, embedded hubs).

    ``port=0`` picks a free port; :attr:`url` tells which. Use as a context manager.
    """

    def __init__(
        self,
        app: FastAPI,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
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
            app, log_level="warning", access_log=False, ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile
        )
        self.server = uvicorn.Server(config)
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


class HttpTransport(Transport):
    """An httpx client for one endpoint, with retries and backoff. Thread-safe (a connection pool)."""

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
        if isinstance(verify, str):  # a CA file: trust exactly that certificate authority
            ctx = ssl.create_default_context(cafile=verify)
            if cert is not None:
                ctx.load_cert_chain(*((cert,) if isinstance(cert, str) else cert))
            verify, cert = ctx, None
        # One client, one kept-alive connection; TCP_NODELAY so a request's head and body (written
        # separately) are not held back by Nagle's algorithm waiting for a delayed ACK.
        transport = httpx.HTTPTransport(
            verify=verify, cert=cert, socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
        )
        self.client = httpx.Client(base_url=base_url, transport=transport, timeout=timeout)
        self.retries, self.backoff = retries, backoff
        self._lock = threading.Lock()  # the byte counters, updated from several threads
        self.bytes_sent = 0
        self.bytes_received = 0

    def _count(self, sent: int, received: int) -> None:
        with self._lock:
            self.bytes_sent += sent
            self.bytes_received += received

    def _request(self, method: str, url: str, **kw: Any) -> httpx.Response:
        for attempt in range(self.retries + 1):
            try:
                response = self.client.request(method, url, **kw)
            except (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError, httpx.TimeoutException):
                if attempt == self.retries:
                    raise
            else:
                if response.status_code < 500 or attempt == self.retries:
                    return response
            time.sleep(self.backoff * (2**attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _raise(response: httpx.Response) -> None:
        try:
            body = response.json()
        except ValueError:
            body = {"error": "HTTPError", "reason": response.text[:200]}
        raise RemoteError(response.status_code, body.get("error", ""), body.get("reason", ""))

    def send(self, envelope: Envelope) -> dict[str, Any]:
        raw = envelope.to_bytes()
        response = self._request("POST", "/v1/envelope", content=raw)
        self._count(len(raw), len(response.content))
        if response.status_code >= 400:
            self._raise(response)
        return response.json()

    def put_blob(self, data: bytes | Iterable[bytes], *, expected: str | None = None) -> str:
        if expected is None:
            if not isinstance(data, bytes | bytearray):
                data = b"".join(data)  # the URL names the digest, so it must be known first
            expected = hashlib.sha256(data).hexdigest()
        content = bytes(data) if isinstance(data, bytes | bytearray) else data
        if isinstance(content, bytes):
            self._count(len(content), 0)
        response = self._request("PUT", f"/v1/blobs/{check_digest(expected)}", content=content)
        if response.status_code >= 400:
            self._raise(response)
        return response.json()["digest"]

    def iter_blob(self, digest: str) -> Iterator[bytes]:
        digest = check_digest(digest)
        with self.client.stream("GET", f"/v1/blobs/{digest}") as response:
            if response.status_code >= 400:
                response.read()
                self._raise(response)

            def chunks() -> Iterator[bytes]:
                for chunk in response.iter_bytes(CHUNK):
                    self._count(0, len(chunk))
                    yield chunk

            yield from verified(digest, chunks())

    def close(self) -> None:
        self.client.close()
