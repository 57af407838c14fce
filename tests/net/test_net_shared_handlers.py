"""Handlers routed with exclusive=False (long polls) run outside the endpoint's lock; sockets are TCP."""

import socket
import threading

import pytest

from deai.core.envelope import Envelope
from deai.net.http import HttpTransport, ServerThread, make_app
from deai.net.transport import RemoteError

NET = "nettest"


def add_gate(endpoint):
    """A handler that blocks until the test opens the gate (as a long poll would)."""
    gate, entered = threading.Event(), threading.Event()

    @endpoint.route("gate", exclusive=False)
    def wait_for_gate(env):
        entered.set()
        if not gate.wait(timeout=30):
            raise RuntimeError("gate never opened")
        return {"opened": True, "counter": endpoint.state["counter"]}

    return gate, entered


def test_a_blocking_shared_handler_does_not_hold_back_other_requests(endpoint_factory, alice):
    endpoint = endpoint_factory()
    gate, entered = add_gate(endpoint)
    with ServerThread(make_app(endpoint)) as server:
        waiter = HttpTransport(server.url, retries=0, timeout=60)
        other = HttpTransport(server.url, retries=0, timeout=20)
        answer = {}
        env = Envelope.seal(alice, "gate", {}, NET)
        thread = threading.Thread(target=lambda: answer.update(waiter.send(env)))
        thread.start()
        assert entered.wait(timeout=20)
        # While "gate" blocks, an exclusive handler still runs (a serialized endpoint would time out).
        assert other.send(Envelope.seal(alice, "add", {"amount": 4}, NET))["counter"] == 4
        gate.set()
        thread.join(timeout=20)
        assert answer == {"opened": True, "counter": 4}
        assert waiter.send(env) == answer  # an identical retry gets the first answer back
        with pytest.raises(RemoteError) as err:  # a changed body under the same nonce is forged
            waiter.send(
                Envelope(env.type, {"x": 1}, env.sender, env.nonce, env.timestamp, NET, env.signature)
            )
        assert err.value.status == 401
        waiter.close()
        other.close()


def test_shared_handler_envelopes_are_verified_first(endpoint_factory, alice):
    endpoint = endpoint_factory()
    gate, entered = add_gate(endpoint)
    gate.set()
    with ServerThread(make_app(endpoint)) as server:
        transport = HttpTransport(server.url, retries=0)
        with pytest.raises(RemoteError) as err:
            transport.send(Envelope.seal(alice, "gate", {}, "othernet"))
        assert err.value.error == "WrongNetwork"
        assert not entered.is_set()
        transport.close()


def test_server_socket_is_tcp_so_answers_are_not_delayed(endpoint_factory):
    # asyncio sets TCP_NODELAY on accepted connections only when the listening socket's protocol
    # is TCP; without it every answer (head and body written apart) waits for a delayed ACK.
    server = ServerThread(make_app(endpoint_factory()))
    try:
        assert server.sock.proto == socket.IPPROTO_TCP
    finally:
        server.sock.close()
