"""``deai account new|show|list|fund``: keystores in ``$DEAI_HOME/keys`` and what a hub says of them.

A keystore is a standard encrypted Ethereum keystore (scrypt), named ``ADDRESS.json``; its password
comes from ``--password``, ``--password-file``, ``$DEAI_PASSWORD_FILE``, ``$DEAI_PASSWORD`` or a
prompt. ``show --hub URL`` adds the balance, nonce and stakes per role from a running hub;
``fund`` is the minter minting to an account (devnets: the genesis names the minter).
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from deai.cli.common import (
    connect,
    deai_home,
    keystore_path,
    load_account,
    load_accounts,
    password_file_option,
    password_option,
    read_password,
)
from deai.cli.errors import UsageError

__all__ = ["app", "describe_account"]

app = typer.Typer(help="Create, show and fund accounts (encrypted Ethereum keystores).", no_args_is_help=True)


def _keys_dir(keys_dir: Path | None) -> Path:
    return keys_dir if keys_dir is not None else deai_home() / "keys"


KeysDir = typer.Option(None, "--keys-dir", help="Keystore folder (default: $DEAI_HOME/keys).")
HubOpt = typer.Option(None, "--hub", help="A hub's URL: also show the balance and stakes it records.")


@app.command("new")
def new(
    password: str | None = password_option,
    password_file: Path | None = password_file_option,
    keys_dir: Path | None = KeysDir,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the address (for scripts)."),
) -> None:
    """Create an account and save it as an encrypted keystore; print its address."""
    from deai.core.accounts import Account

    account = Account.create()
    secret = read_password(password, confirm=True, password_file=password_file)
    path = account.save(_keys_dir(keys_dir) / f"{account.address}.json", secret)
    typer.echo(account.address if quiet else f"created {account.address}\nkeystore: {path}")


def _address_of(spec: str, keys_dir: Path | None) -> tuple[str, Path | None]:
    """(address, keystore path or None) of an address, keystore file or seed spec; no password."""
    from deai.core.accounts import check_address
    from deai.core.errors import DeaiError

    if spec.startswith("seed:"):
        return load_account(spec).address, None
    path = Path(spec)
    if not path.is_file():
        try:
            address = check_address(spec)
        except DeaiError as exc:
            raise UsageError(f"{spec!r} is not an address, a keystore file or seed:NAME:I ({exc})") from None
        path = keystore_path(address, _keys_dir(keys_dir))
        return address, (path if path.is_file() else None)
    try:
        return check_address("0x" + json.loads(path.read_text())["address"].removeprefix("0x")), path
    except (OSError, ValueError, KeyError, DeaiError) as exc:
        raise UsageError(f"cannot read the address of keystore {path}: {exc}") from None


def describe_account(client, address: str) -> list[tuple[str, str]]:
    """(label, value) rows of what the hub's ledger records for ``address``: balance, nonce, and
    per role its stake, the part locked in open jobs and its reputation."""
    from deai.ledger.config import ROLES

    rows = [("balance", f"{client.query('balance', address=address):,}")]
    rows.append(("next nonce", str(client.query("nonce", address=address))))
    minimum = client.info()["config"]["min_stake"]
    for role in ROLES:
        stake = client.query("stake", address=address, role=role)
        locked = client.query("locked", address=address, role=role)
        rep = client.query("reputation", address=address, role=role)
        rows.append(
            (f"stake {role}", f"{stake:,} (locked {locked:,}, reputation {rep}, minimum {minimum[role]:,})")
        )
    return rows


@app.command("show")
def show(
    account: str = typer.Argument(
        ..., help="An address (keystore in the keys folder), keystore file or seed:NAME:I."
    ),
    hub: str | None = HubOpt,
    password: str | None = typer.Option(
        None, "--password", help="Also decrypt the keystore with this password (proves it works)."
    ),
    password_file: Path | None = typer.Option(
        None, "--password-file", help="Also decrypt the keystore with the password in this file."
    ),
    keys_dir: Path | None = KeysDir,
) -> None:
    """Show an account's address and keystore; with --hub, its balance and stakes per role."""
    address, path = _address_of(account, keys_dir)
    client = connect(hub) if hub is not None else None  # a wrong --hub: one line, before anything
    if (password is not None or password_file is not None) and path is not None:
        from deai.core.accounts import Account
        from deai.core.errors import DeaiError

        try:
            Account.load(path, read_password(password, password_file=password_file))
        except DeaiError as exc:
            typer.echo(f"error: {exc}")
            raise typer.Exit(1) from exc
    typer.echo(f"address      {address}")
    if path is not None:
        where = str(path)
    elif account.startswith("seed:"):
        where = "(none: a development key)"
    else:
        where = f"(not in {_keys_dir(keys_dir)})"
    typer.echo(f"keystore     {where}")
    if client is not None:
        typer.echo(f"network      {client.network} at {hub}")
        for label, value in describe_account(client, address):
            typer.echo(f"{label:<12} {value}")


@app.command("list")
def list_(keys_dir: Path | None = KeysDir) -> None:
    """List the keystores in the keys folder."""
    folder = _keys_dir(keys_dir)
    names = sorted(p.stem for p in folder.glob("0x*.json")) if folder.exists() else []
    for name in names:
        typer.echo(name)
    if not names:
        typer.echo(f"no keystores in {folder} (create one with `deai account new`)")


@app.command("fund")
def fund(
    to: list[str] = typer.Argument(..., help="Accounts to fund: addresses, keystore files or seed:NAME:I."),
    amount: int = typer.Option(..., "--amount", min=1, help="How much to mint to each account."),
    minter: str = typer.Option(..., "--minter", help="The genesis minter: seed:NAME:I, address or keystore."),
    hub: str = typer.Option(..., "--hub", help="The hub's URL."),
    password: str | None = password_option,
    password_file: Path | None = password_file_option,
) -> None:
    """Mint ``--amount`` to each account, signed by the network's minter (devnets and testnets: on
    a network with real value the minter's key is not handed out)."""
    from deai.ledger.txs import Mint

    addresses = [
        a.address
        for t in to
        if t.startswith("seed:")
        for a in load_accounts([t])  # seed:NAME:I-J
    ] + [_address_of(t, None)[0] for t in to if not t.startswith("seed:")]
    signer = load_account(minter, password, password_file)
    client = connect(hub, signer)
    expected = client.info()["config"]["minter"]
    if signer.address.lower() != str(expected).lower():
        raise UsageError(
            f"{signer.address} is not this network's minter ({expected}); only the genesis minter may fund"
        )
    client.submit([(signer, Mint(to=a, amount=amount)) for a in addresses])
    for a in addresses:
        typer.echo(f"funded {a} with {amount:,}: balance {client.query('balance', address=a):,}")
