import pytest

from deai.core.accounts import Account
from deai.core.blobs import BlobStore
from deai.net.endpoint import Endpoint, ServiceError, UploadPolicy
from deai.net.http import HttpTransport, ServerThread, make_app
from deai.net.memory import MemoryTransport

NET = "nettest"


def make_endpoint(tmp_path, **kw):
    state = {"counter": 0}
    kw.setdefault("uploads", UploadPolicy(quota_of=lambda address: 1 << 30))  # any signer may upload
    endpoint = Endpoint(NET, {}, BlobStore(tmp_path / "blobs", max_bytes=1 << 20), max_body_bytes=4096, **kw)

    @endpoint.route("add")
    def add(env):
        amount = env.body.get("amount")
        if not isinstance(amount, int) or amount < 0:
            raise ServiceError(f"amount must be a non-negative integer, got {amount!r}")
        state["counter"] += amount
        return {"counter": state["counter"], "from": env.sender}

    @endpoint.route("crash")
    def crash(env):
        raise ZeroDivisionError("handler bug")

    endpoint.state = state
    return endpoint


@pytest.fixture
def endpoint_factory(tmp_path):
    return lambda **kw: make_endpoint(tmp_path, **kw)


@pytest.fixture(params=["memory", "http"])
def transport_and_endpoint(request, tmp_path):
    endpoint = make_endpoint(tmp_path)
    if request.param == "memory":
        yield MemoryTransport(endpoint), endpoint
        return
    with ServerThread(make_app(endpoint)) as server:
        transport = HttpTransport(server.url, retries=1, backoff=0.01)
        yield transport, endpoint
        transport.close()


@pytest.fixture
def alice():
    return Account.from_seed("alice-net")


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory):
    """One HTTP server for many hypothesis examples."""
    endpoint = make_endpoint(tmp_path_factory.mktemp("shared"))
    with ServerThread(make_app(endpoint)) as server:
        yield server, endpoint
