"""Chains to run the ledger contract on: an in-process py-evm chain and a real anvil node.

- :func:`tester_chain` -- eth-tester with py-evm in this process (fast tests; nothing to install).
- :class:`AnvilNode` -- the ``anvil`` binary as a child process on a local port, its state kept in
  ``<state_dir>/state.json``: loaded at start (``--load-state``), dumped on exit and every few
  seconds (``--dump-state``, ``--state-interval``), so a restart continues the same chain.
  The binary is found at ``$DEAI_ANVIL``, in the repository's ``.deai-node`` or ``node_modules``
  folder (``make anvil`` installs the npm package ``@foundry-rs/anvil`` there), or on ``PATH``.
- :func:`set_next_timestamp` -- on a development chain, the timestamp of the next block (how a
  backend with a manual clock drives the chain's time).

Any other EVM JSON-RPC URL works too: give it to ``Web3(Web3.HTTPProvider(url))``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from web3 import EthereumTesterProvider, Web3

from deai.ledger.errors import LedgerError

__all__ = [
    "ANVIL_INSTALL",
    "ANVIL_KEYS",
    "AnvilNode",
    "find_anvil",
    "set_next_timestamp",
    "tester_chain",
]

ANVIL_INSTALL = "make anvil  (npm install --no-audit --no-fund --prefix .deai-node @foundry-rs/anvil@1.7.1)"
# anvil's development accounts (mnemonic "test test ... junk"): the first pays the gas by default
ANVIL_KEYS = ("0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",)
_REL = "node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"


def tester_chain() -> Web3:
    """A fresh in-process chain (eth-tester, py-evm) with funded, unlocked accounts."""
    return Web3(EthereumTesterProvider())


def set_next_timestamp(w3: Web3, timestamp: int) -> None:
    """Set the timestamp of the next block (development chains only; it must exceed the last)."""
    provider = w3.provider
    if isinstance(provider, EthereumTesterProvider):
        tester = provider.ethereum_tester
        assert tester is not None
        chain = tester.backend.chain
        chain.header = chain.header.copy(timestamp=timestamp)
    else:
        w3.provider.make_request("evm_setNextBlockTimestamp", [timestamp])  # type: ignore[arg-type]


def find_anvil() -> Path | None:
    """The anvil binary, or None when it is not installed."""
    env = os.environ.get("DEAI_ANVIL")
    if env:
        return Path(env) if Path(env).is_file() else None
    root = Path(__file__).resolve().parents[4]  # the repository (src/deai/ledger/evm/node.py)
    for path in (root / ".deai-node" / _REL, root / _REL, Path.cwd() / ".deai-node" / _REL):
        if path.is_file():
            return path
    found = shutil.which("anvil")
    return Path(found) if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AnvilNode:
    """``AnvilNode(state_dir).start()``: an anvil child process; ``url`` is its RPC endpoint.
    ``stop()`` ends it with SIGINT, which makes anvil dump its state; ``start()`` again (or a new
    node on the same ``state_dir``) loads it. Use as a context manager."""

    def __init__(
        self,
        state_dir: str | os.PathLike,
        *,
        port: int = 0,
        dump_interval_s: int = 2,
        host: str = "127.0.0.1",
    ) -> None:
        self.state_dir = Path(state_dir)
        self.host = host  # where it listens (0.0.0.0: every interface, for other machines)
        self.port = port
        self.dump_interval_s = dump_interval_s
        self.process: subprocess.Popen | None = None

    @property
    def state_file(self) -> Path:
        return self.state_dir / "state.json"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30.0) -> AnvilNode:
        binary = find_anvil()
        if binary is None:
            raise LedgerError(f"anvil is not installed; install it with: {ANVIL_INSTALL}")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or _free_port()
        cmd = [str(binary), "--host", self.host, "--port", str(self.port), "--silent"]
        cmd += ["--dump-state", str(self.state_file), "--state-interval", str(self.dump_interval_s)]
        cmd += ["--preserve-historical-states"]
        if self.state_file.is_file():
            cmd += ["--load-state", str(self.state_file)]
        log = open(self.state_dir / "anvil.log", "ab")  # noqa: SIM115 - the child keeps it
        self.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        w3 = Web3(Web3.HTTPProvider(self.url, request_kwargs={"timeout": 5}))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise LedgerError(f"anvil exited at start (code {self.process.returncode}); see {log.name}")
            try:
                if w3.eth.block_number >= 0:
                    return self
            except Exception:
                time.sleep(0.1)
        self.stop()
        raise LedgerError(f"anvil did not answer on {self.url} within {timeout_s} s")

    def web3(self) -> Web3:
        return Web3(Web3.HTTPProvider(self.url, request_kwargs={"timeout": 30}))

    def stop(self, timeout_s: float = 20.0) -> None:
        """Stop anvil; it writes its state file on the way out."""
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def __enter__(self) -> AnvilNode:
        return self.start() if self.process is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()
