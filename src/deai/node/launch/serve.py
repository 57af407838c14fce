"""Hub and daemon processes: what ``deai hub`` and ``deai node`` run, and how to launch them.

- :func:`serve_hub` opens (or creates) the hub's folder -- ``ledger.sqlite`` (the durable ledger),
  ``blobs/``, ``hub.kv`` (coordinator state), ``replay.sqlite`` (envelope replay cache) -- serves
  it over HTTP(S) and ticks the coordinators on a background thread until SIGTERM/SIGINT. Its URL is
  written to ``DIR/hub.url`` once it listens (``port=0`` picks a free port). Given a ``chain``
  (:class:`~deai.node.launch.chain.ChainRef`) the ledger is that EVM contract instead of the
  SQLite file: the hub relays transactions to it (the network config is kept in
  ``DIR/genesis.json`` so a restart needs no ``--genesis``).
- :func:`serve_node` runs a :class:`~deai.node.participant.daemon.Daemon` against a hub URL until
  stopped; given a ``chain`` it reads the ledger from the chain itself, not from the hub.
- :func:`spawn_hub` / :func:`spawn_node` start those as child processes
  (``python -m deai.cli.hub`` / ``python -m deai.cli.node``) for ``deai up`` and the tests.
- :func:`parse_accounts` reads account specs: ``seed:NAME:I`` or ``seed:NAME:I-J`` (deterministic
  development keys, :meth:`Account.from_seed`) or a keystore file (password from
  ``$DEAI_PASSWORD``).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

from deai.core.accounts import Account
from deai.core.blobs import BlobStore
from deai.core.logs import event
from deai.ledger.base import Ledger
from deai.ledger.config import NetworkConfig
from deai.ledger.errors import LedgerError
from deai.ledger.sqlite import SqliteLedger
from deai.net.http import HttpTransport, ServerThread, make_app
from deai.net.limits import RateLimits
from deai.node.hub.activity import Activity
from deai.node.hub.dashboard import mount_dashboard
from deai.node.hub.kv import KV
from deai.node.hub.server import Hub
from deai.node.launch.activity import LoggedClient
from deai.node.launch.chain import ChainRef, hub_ledger, participant_chain
from deai.node.participant.client import HubClient
from deai.node.participant.daemon import Daemon

__all__ = [
    "hub_client",
    "parse_accounts",
    "serve_hub",
    "serve_node",
    "spawn_hub",
    "spawn_node",
    "wait_for_url",
]


DEFAULT_LIMITS = RateLimits()  # what ``deai hub`` runs with
log = logging.getLogger("deai.launch")


def parse_accounts(specs: Sequence[str]) -> list[Account]:
    out: list[Account] = []
    for spec in specs:
        if spec.startswith("seed:"):
            name, _, idx = spec[5:].rpartition(":")
            lo, _, hi = idx.partition("-")
            if not name or not lo.isdigit() or not (hi or lo).isdigit():
                raise ValueError(f"account spec {spec!r} must look like seed:NAME:I or seed:NAME:I-J")
            out += [Account.from_seed(name, i) for i in range(int(lo), int(hi or lo) + 1)]
        else:
            out.append(Account.load(spec, os.environ.get("DEAI_PASSWORD", "")))
    return out


def _stop_on_signals(stop: threading.Event) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())


def serve_hub(
    folder: str | Path,
    account: Account,
    *,
    genesis: NetworkConfig | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    tick_s: float = 0.05,
    ssl_certfile: str | None = None,
    ssl_keyfile: str | None = None,
    max_blob_bytes: int = 256 << 20,
    limits: RateLimits | None = DEFAULT_LIMITS,
    stop: threading.Event | None = None,
    chain: ChainRef | None = None,
) -> None:
    """Serve a hub on ``folder`` until ``stop`` is set (or SIGTERM/SIGINT on the main thread).

    ``limits`` are the request rates per sender and per client address (None: none); uvicorn runs
    with :data:`~deai.net.http.SERVER_LIMITS` (connections, keep-alive, header size), and uploads
    follow the hub's quota, TTL and concurrency rules (:class:`~deai.node.hub.server.Hub`)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ledger: Ledger
    if chain is None:
        ledger = SqliteLedger(folder / "ledger.sqlite", genesis, operator=account)  # signs checkpoints
    else:
        saved = folder / "genesis.json"
        if genesis is not None:
            saved.write_text(json.dumps(genesis.to_dict()))
        elif saved.is_file():
            genesis = NetworkConfig.from_dict(json.loads(saved.read_text()))
        else:
            raise LedgerError(f"{folder} has no network config yet: start the hub with --genesis FILE")
        ledger = hub_ledger(chain, genesis)
    hub = Hub(
        ledger,
        BlobStore(folder / "blobs", max_bytes=max_blob_bytes),
        account,
        kv=KV(folder / "hub.kv"),
        replay_path=folder / "replay.sqlite",
        limits=limits,
    )
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        _stop_on_signals(stop)
    app = make_app(hub.endpoint, title="deai hub", routes={"/v1/infer": "infer.request"})
    mount_dashboard(app, hub)  # the read-only dashboard at / and /dashboard/
    activity = Activity(hub)  # one log line per ledger event and task change
    server = ServerThread(
        app,
        host,
        port,
        ssl_certfile=ssl_certfile,
        ssl_keyfile=ssl_keyfile,
    )
    server.start()
    (folder / "hub.url.tmp").write_text(server.url)
    os.replace(folder / "hub.url.tmp", folder / "hub.url")
    event(
        log,
        "hub.started",
        url=server.url,
        network=hub.network,
        coordinator=account.address,
        dashboard=f"{server.url}/",
    )
    try:
        while not stop.is_set():
            try:
                busy = hub.tick()
                if not busy:  # nothing due: prepare what it can (outside the lock) before sleeping
                    hub.prepare()
            except Exception:  # keep serving; the error is in the log and the task waits
                log.exception("hub tick failed")
                busy = False
            activity.step()
            if not busy:  # until the next change (a request that changed something) or tick_s
                hub.changes.wait_tick(tick_s)
    finally:
        event(log, "hub.stopped", url=server.url)
        server.stop()
        ledger.close()


def probe_network(url: str, verify: bool | str = True) -> str:
    """The network id a hub serves (``GET /v1/health``), retried while it starts."""
    deadline = time.monotonic() + 30
    while True:
        try:
            return httpx.get(f"{url}/v1/health", verify=verify, timeout=5).json()["network"]
        except (httpx.HTTPError, ValueError, KeyError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def hub_client(
    url: str,
    signer: Account,
    *,
    verify: bool | str = True,
    client: type[HubClient] = HubClient,
    chain: ChainRef | None = None,
) -> HubClient:
    """A client of the hub at ``url``; with ``chain`` its ledger reads come from that chain (the
    network config the hub announces is checked against the contract's genesis hash)."""
    network = probe_network(url, verify)
    hub = client(HttpTransport(url, verify=verify, retries=6, backoff=0.1), network, signer)
    if chain is not None:
        view = participant_chain(chain, _field_config(hub.info()))
        if view.config.network != network:
            theirs = view.config.network
            raise LedgerError(f"the hub serves network {network!r}, the chain's ledger is {theirs!r}")
        hub.chain = view  # from here on its ledger reads come from the chain
    return hub


def _field_config(info: object) -> dict:
    config = info.get("config") if isinstance(info, dict) else None
    if not isinstance(config, dict):
        raise LedgerError("the hub's hub.info answer has no network config")
    return config


def serve_node(
    url: str,
    roles: Mapping[str, Sequence[Account]],
    state_dir: str | Path,
    *,
    data_dir: str | Path | None = None,
    behaviours: Mapping[str, str] | None = None,
    options: Mapping | None = None,
    interval: float = 0.05,
    long_poll: float | None = 1.0,
    verify: bool | str = True,
    stop: threading.Event | None = None,
    chain: ChainRef | None = None,
) -> None:
    """Run a daemon for ``roles`` against the hub at ``url`` until stopped. With nothing to do it
    long-polls the hub (``hub.wait``, up to ``long_poll`` seconds; None: sleep ``interval``).
    ``chain``: read the ledger from this chain, not from the hub."""
    signer = next(a for accts in roles.values() for a in accts)
    client = hub_client(url, signer, verify=verify, client=LoggedClient, chain=chain)  # logs its actions
    daemon = Daemon(client, roles, state_dir, data_dir=data_dir, behaviours=behaviours, options=options)
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        _stop_on_signals(stop)
    while not stop.is_set():  # the hub may still be starting: set up once it answers
        try:
            daemon.setup()
            break
        except Exception as exc:
            log.warning("node setup failed, retrying", exc_info=exc)
            stop.wait(0.5)
    hosted = {r: len(a) for r, a in roles.items()}
    event(log, "node.started", hub=url, network=client.network, roles=hosted)
    daemon.run(stop, interval=interval, long_poll=long_poll)
    event(log, "node.stopped", hub=url)


# -- launching child processes ---------------------------------------------------------------------------


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def spawn_hub(
    folder: str | Path,
    account: str,
    *,
    genesis: str | Path | None = None,
    port: int = 0,
    log: Path | None = None,
    chain: ChainRef | None = None,
) -> subprocess.Popen:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "hub.url").unlink(missing_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "deai.cli.hub",
        "--dir",
        str(folder),
        "--account",
        account,
        "--port",
        str(port),
    ]
    if genesis is not None:
        cmd += ["--genesis", str(genesis)]
    if chain is not None:
        cmd += chain.args()
    out = open(log or folder / "hub.log", "ab")  # noqa: SIM115 - owned by the child
    return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=_env(), start_new_session=True)


def wait_for_url(folder: str | Path, proc: subprocess.Popen | None = None, timeout: float = 60.0) -> str:
    path = Path(folder) / "hub.url"
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(
                f"the hub exited with status {proc.returncode}; see {Path(folder) / 'hub.log'}"
            )
        if time.monotonic() > deadline:
            raise TimeoutError("the hub did not start")
        time.sleep(0.05)
    return path.read_text().strip()


def spawn_node(
    url: str,
    roles: Sequence[str],
    accounts: Sequence[str],
    state_dir: str | Path,
    *,
    data_dir: str | Path | None = None,
    behaviours: Mapping[str, str] | None = None,
    log: Path | None = None,
    extra_args: Sequence[str] = (),
    chain: ChainRef | None = None,
) -> subprocess.Popen:
    """Start ``deai node`` as a child process; ``extra_args`` are further flags (e.g. the join
    policy's, :func:`deai.node.participant.policy.policy_args`)."""
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "deai.cli.node", "--hub", url, "--state", str(state_dir)]
    for r in roles:
        cmd += ["--role", r]
    for a in accounts:
        cmd += ["--accounts", a]
    if data_dir is not None:
        cmd += ["--data", str(data_dir)]
    for address, name in (behaviours or {}).items():
        cmd += ["--behaviour", f"{address}={name}"]
    cmd += list(extra_args)
    if chain is not None:
        cmd += chain.args()
    out = open(log or state_dir / "node.log", "ab")  # noqa: SIM115 - owned by the child
    return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=_env(), start_new_session=True)
