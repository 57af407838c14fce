"""``deai account new|show|list``: keystores in ``$DEAI_HOME/keys``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from deai.cli.common import console, deai_home, password_option, read_password
from deai.core.accounts import Account, check_address
from deai.core.errors import DeaiError

app = typer.Typer(help="Create and inspect accounts (encrypted Ethereum keystores).", no_args_is_help=True)


def _keys_dir(keys_dir: Path | None) -> Path:
    return keys_dir if keys_dir is not None else deai_home() / "keys"


KeysDir = typer.Option(None, "--keys-dir", help="Keystore folder (default: $DEAI_HOME/keys).")


@app.command("new")
def new(password: str | None = password_option, keys_dir: Path | None = KeysDir) -> None:
    """Create an account and save it as an encrypted keystore."""
    account = Account.create()
    path = account.save(
        _keys_dir(keys_dir) / f"{account.address}.json", read_password(password, confirm=True)
    )
    console.print(f"[green]created[/] {account.address}\nkeystore: {path}")


@app.command("show")
def show(
    address: str = typer.Argument(..., help="Address of a keystore in the keys folder."),
    password: str | None = password_option,
    keys_dir: Path | None = KeysDir,
) -> None:
    """Decrypt a keystore and show its address and public key (proves the password works)."""
    try:
        address = check_address(address)
        account = Account.load(_keys_dir(keys_dir) / f"{address}.json", read_password(password))
    except DeaiError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    table = Table(show_header=False)
    table.add_row("address", account.address)
    table.add_row("public key", "0x" + account.public_key.hex())
    console.print(table)


@app.command("list")
def list_(keys_dir: Path | None = KeysDir) -> None:
    """List the keystores in the keys folder."""
    folder = _keys_dir(keys_dir)
    names = sorted(p.stem for p in folder.glob("0x*.json")) if folder.exists() else []
    for name in names:
        console.print(name)
    if not names:
        console.print(f"no keystores in {folder}")
