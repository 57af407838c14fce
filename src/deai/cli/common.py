"""Shared CLI plumbing: where deai keeps its files, passwords, accounts, reaching a hub, a console.

Account specs, wherever a command takes ``--account``: ``seed:NAME:I`` (a deterministic development
key: never for real funds), an address whose keystore is in ``$DEAI_HOME/keys``, or a keystore file.
A keystore's password comes from ``--password``, ``--password-file``, ``$DEAI_PASSWORD_FILE``,
``$DEAI_PASSWORD``, else a prompt.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from deai.cli.errors import HubUnreachable, UsageError

if TYPE_CHECKING:
    from deai.core.accounts import Account
    from deai.node.launch.chain import ChainRef
    from deai.node.participant.client import HubClient

__all__ = [
    "PROBE_S",
    "connect",
    "console",
    "deai_home",
    "keystore_path",
    "load_account",
    "load_accounts",
    "password_file_option",
    "password_option",
    "probe_hub",
    "read_password",
]

console = Console()
PROBE_S = 3.0  # how long a command tries to reach a hub before it says it cannot


def deai_home() -> Path:
    """``$DEAI_HOME`` or ``~/.deai``: keystores, blobs and ledgers of this machine."""
    return Path(os.environ.get("DEAI_HOME", Path.home() / ".deai"))


password_option = typer.Option(
    None, "--password", help="Keystore password (default: $DEAI_PASSWORD, else prompt)."
)
password_file_option = typer.Option(
    None, "--password-file", help="Read the keystore password from this file (first line)."
)


def read_password(password: str | None, *, confirm: bool = False, password_file: Path | None = None) -> str:
    """The keystore password: ``--password``, ``--password-file``, ``$DEAI_PASSWORD_FILE``,
    ``$DEAI_PASSWORD``, else a prompt."""
    if password is not None:
        return password
    file = password_file or (
        Path(os.environ["DEAI_PASSWORD_FILE"]) if "DEAI_PASSWORD_FILE" in os.environ else None
    )
    if file is not None:
        try:
            lines = file.read_text().splitlines()
        except OSError as exc:
            raise UsageError(f"cannot read the password file {file}: {exc.strerror}") from None
        return lines[0] if lines else ""
    if "DEAI_PASSWORD" in os.environ:
        return os.environ["DEAI_PASSWORD"]
    return typer.prompt("Keystore password", hide_input=True, confirmation_prompt=confirm)


def keystore_path(address: str, keys_dir: Path | None = None) -> Path:
    return (keys_dir or deai_home() / "keys") / f"{address}.json"


def load_accounts(
    specs: list[str], password: str | None = None, password_file: Path | None = None
) -> list[Account]:
    """The accounts of ``specs`` (module docstring); a missing keystore or a wrong spec is a
    :class:`UsageError` naming it and the fix."""
    from deai.core.accounts import Account, check_address
    from deai.core.errors import DeaiError

    out: list[Account] = []
    secret: str | None = None
    for spec in specs:
        if spec.startswith("seed:"):  # the grammar of deai.node.launch.serve.parse_accounts, without
            name, _, idx = spec[5:].rpartition(":")  # importing the node code (and torch) for it
            lo, _, hi = idx.partition("-")
            if not name or not lo.isdigit() or not (hi or lo).isdigit():
                raise UsageError(f"account spec {spec!r} must look like seed:NAME:I or seed:NAME:I-J")
            out += [Account.from_seed(name, i) for i in range(int(lo), int(hi or lo) + 1)]
            continue
        path = Path(spec)
        if spec.startswith("0x") and not path.exists():
            try:
                path = keystore_path(check_address(spec))
            except DeaiError as exc:
                raise UsageError(f"account {spec!r}: {exc}") from None
            if not path.exists():
                raise UsageError(
                    f"no keystore for {spec} in {path.parent} (create one with `deai account new`,"
                    " or give the keystore file or seed:NAME:I)"
                )
        elif not path.is_file():
            raise UsageError(
                f"account {spec!r} is neither seed:NAME:I, an address with a keystore in"
                f" {deai_home() / 'keys'}, nor a keystore file"
            )
        if secret is None:
            secret = read_password(password, password_file=password_file)
        try:
            out.append(Account.load(path, secret))
        except DeaiError as exc:
            raise UsageError(f"keystore {path}: {exc} (wrong password?)") from None
    return out


def load_account(spec: str, password: str | None = None, password_file: Path | None = None) -> Account:
    (account,) = load_accounts([spec], password, password_file)
    return account


def probe_hub(url: str, *, timeout: float = PROBE_S, verify: bool | str = True) -> dict[str, Any]:
    """``GET URL/v1/health`` with a bounded retry: the hub's health answer, or
    :class:`HubUnreachable` naming the URL and the fix after ``timeout`` seconds."""
    import httpx

    if not url.startswith(("http://", "https://")):
        raise HubUnreachable(f"--hub {url!r} is not a URL; give it as http://HOST:PORT")
    deadline, last = time.monotonic() + timeout, ""
    while True:
        try:
            reply = httpx.get(f"{url.rstrip('/')}/v1/health", verify=verify, timeout=min(2.0, timeout))
            body = reply.json()
            if isinstance(body, dict) and isinstance(body.get("network"), str):
                return body
            last = f"answered {reply.status_code} but is not a deai hub"
        except (httpx.HTTPError, ValueError) as exc:
            last = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if time.monotonic() > deadline:
            raise HubUnreachable(
                f"no deai hub at {url} ({last}); check --hub (the URL `deai hub` printed,"
                " also in its DIR/hub.url) and that the hub is running"
            )
        time.sleep(0.2)


def connect(
    url: str, signer: Account | None = None, *, verify: bool | str = True, chain: ChainRef | None = None
) -> HubClient:
    """A :class:`HubClient` for ``url`` signed by ``signer`` (a throwaway key for queries), after a
    bounded :func:`probe_hub`; with ``chain`` its ledger reads come from that chain. Without one,
    ``$DEAI_RPC`` and ``$DEAI_LEDGER_ADDRESS`` name it when both are set (every command that talks
    to a hub then reads the ledger from the chain, not from the hub)."""
    from deai.core.accounts import Account
    from deai.node.launch.chain import ChainRef
    from deai.node.launch.serve import hub_client

    rpc, address = os.environ.get("DEAI_RPC"), os.environ.get("DEAI_LEDGER_ADDRESS")
    if chain is None and rpc and address:
        chain = ChainRef(rpc, address)
    probe_hub(url, verify=verify)
    return hub_client(url.rstrip("/"), signer or Account.create(), verify=verify, chain=chain)
