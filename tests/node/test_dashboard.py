"""The hub's dashboard API over real HTTP (a hub served on loopback in this process): read-only,
bounded, validated ids, no secrets; the statement's figures and slash reasons; the cached
verification."""

import threading
import time

import httpx
import pytest

from deai.core.accounts import Account
from deai.ledger.config import COMPUTE, HOST, NetworkConfig
from deai.ledger.txs import Mint, Slash, Stake
from deai.node.hub.dashboard import PAGE
from deai.node.launch.serve import hub_client, serve_hub, wait_for_url

MINTER = Account.from_seed("dash-minter", 0)
HUB = Account.from_seed("dash-hub", 0)
PEOPLE = [Account.from_seed("dash-p", i) for i in range(3)]


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hub")
    genesis = NetworkConfig(network="deai-dash", minter=MINTER.address, slasher=MINTER.address)
    stop = threading.Event()
    thread = threading.Thread(target=serve_hub, args=(folder, HUB), kwargs={"genesis": genesis, "stop": stop})
    thread.start()
    try:
        url = wait_for_url(folder)
        client = hub_client(url, MINTER)
        client.submit([(MINTER, Mint(to=p.address, amount=50_000)) for p in PEOPLE])
        client.submit([(p, Stake(role=COMPUTE, amount=5_000)) for p in PEOPLE[:2]])
        client.submit([(PEOPLE[2], Stake(role=HOST, amount=5_000))])
        client.submit(
            [(MINTER, Slash(account=PEOPLE[1].address, role=COMPUTE, amount=700, reason="forged output"))]
        )
        yield url
    finally:
        stop.set()
        thread.join(timeout=30)


def get(url, path, **params):
    return httpx.get(url + path, params=params, timeout=20)


def test_network_counts_staked_participants_per_role(hub):
    d = get(hub, "/dashboard/api/network").json()
    assert d["network"] == "deai-dash" and d["head"]["height"] == 7
    assert d["participants"] == {"data_provider": 0, "compute_provider": 2, "host": 1}
    assert d["supply"]["stakes"] == 15_000 - 700


def test_participants_show_stakes_and_slash_reasons(hub):
    d = get(hub, "/dashboard/api/participants").json()
    by = {p["account"]: p for p in d["accounts"]}
    slashed = by[PEOPLE[1].address]
    assert slashed["stakes"] == {"compute_provider": 4_300} and slashed["slashed"] == 700
    assert slashed["roles"][0]["reasons"] == ["by the network: forged output"]
    html = get(hub, "/dashboard/participants").text
    assert "forged output" in html and "Content-Security-Policy" not in html


def test_statement_csv(hub):
    r = get(hub, "/dashboard/api/statement", format="csv")
    assert r.headers["content-type"].startswith("text/csv")
    head, *rows = r.text.splitlines()
    assert head.startswith("account,role,earned_payouts") and head.endswith("slash_reasons")
    assert rows == [
        f"{PEOPLE[1].address},compute_provider,0,0,0,0,0,0,700,0,0,0,by the network: forged output"
    ]


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/dashboard/tasks/0x12", {}, 404),  # not a task id: the page says not found
        ("/dashboard/tasks/" + "0x" + "ab" * 32, {}, 404),  # no such task
        ("/dashboard/api/tasks/<script>", {}, 404),
        ("/dashboard/participants", {"page": -1}, 422),
        ("/dashboard/participants", {"page": 10**9}, 422),
        ("/dashboard/ledger", {"before": "x"}, 422),
        ("/dashboard/api/statement", {"task": "0x1"}, 400),
        ("/dashboard/api/statement", {"format": "xml"}, 422),
        ("/dashboard/api/report", {"task": "0x" + "00" * 32}, 404),
    ],
)
def test_bad_requests_are_refused(hub, path, params, status):
    assert get(hub, path, **params).status_code == status


def test_pages_are_read_only_and_bounded(hub):
    assert httpx.post(hub + "/dashboard/api/network").status_code == 405
    assert httpx.delete(hub + "/dashboard/participants").status_code == 405
    page = get(hub, "/dashboard/api/participants", page=1000).json()
    assert page["accounts"] == [] and page["pages"] == 1
    events = get(hub, "/dashboard/api/ledger").json()["events"]
    assert 0 < len(events) <= PAGE and events[0]["kind"] == "slashed"  # newest first
    r = get(hub, "/dashboard/tasks")
    assert r.headers["content-security-policy"].startswith("default-src 'none'")
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert get(hub, "/", follow_redirects=False).headers["location"] == "/dashboard/"


def test_no_secret_is_served(hub):
    pages = ["/dashboard/", "/dashboard/participants", "/dashboard/ledger", "/dashboard/api/network"]
    text = "".join(get(hub, p).text for p in pages)
    for a in (HUB, MINTER, *PEOPLE):
        assert a.private_key.hex() not in text


def test_verification_is_cached(hub):
    first = get(hub, "/dashboard/api/ledger").json()["verification"]
    deadline = time.monotonic() + 20
    while first["ok"] is None or first["checking"]:  # the first check runs in the background
        assert time.monotonic() < deadline
        time.sleep(0.1)
        first = get(hub, "/dashboard/api/ledger").json()["verification"]
    assert first["ok"] is True and first["entries"] >= 7
    again = get(hub, "/dashboard/api/ledger").json()["verification"]
    assert not again["checking"] and again["age_s"] >= first["age_s"]  # the same result, not a new run
