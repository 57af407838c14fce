"""``deai network init``: write a network's genesis file (the ledger's :class:`NetworkConfig`).

The genesis fixes the network id every transaction signs, the minter (the only account that may
create funds: on a devnet it funds participants with ``deai account fund``), the accounts that may
resolve inference jobs (the hub's, so paid inference works), the minimum stake per role and the
other parameters :class:`~deai.ledger.config.NetworkConfig` documents. Every hub of the network
starts its new ledger from this file (``deai hub --genesis genesis.json``); its hash is the
``prev_hash`` of the first log entry, so ledgers of different genesis files never mix.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from deai.cli.errors import UsageError, did_you_mean

__all__ = ["app", "init", "read_genesis"]

app = typer.Typer(help="Create a network: write its genesis file.", no_args_is_help=True)


@app.callback()
def _group() -> None:
    """Create a network: write its genesis file."""


def read_genesis(path: Path) -> Any:
    """The :class:`NetworkConfig` in the genesis file ``path``; a missing or malformed file is one
    :class:`UsageError` line saying how to write one."""
    from deai.core.errors import DeaiError
    from deai.ledger.config import NetworkConfig

    if not path.is_file():
        raise UsageError(
            f"no genesis file at {path}: write one with `deai network init --minter ADDRESS"
            f" --hub-account ADDRESS --out {path}` (docs/deploy.md)"
        )
    try:
        return NetworkConfig.from_dict(json.loads(path.read_text()))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"genesis file {path} is not JSON: {exc}") from None
    except DeaiError as exc:
        raise UsageError(f"genesis file {path}: {exc}") from None


def _address(spec: str) -> str:
    """An address, or the address of an account spec (seed:NAME:I, keystore file or address)."""
    from deai.core.accounts import check_address
    from deai.core.errors import DeaiError

    if spec.startswith("seed:"):
        from deai.cli.common import load_account

        return load_account(spec).address
    if Path(spec).is_file():  # a keystore: its address field, no password needed
        try:
            return check_address("0x" + json.loads(Path(spec).read_text())["address"].removeprefix("0x"))
        except (OSError, ValueError, KeyError, DeaiError) as exc:
            raise UsageError(f"cannot read the address of keystore {spec}: {exc}") from None
    try:
        return check_address(spec)
    except DeaiError as exc:
        raise UsageError(f"{spec!r} is not an address, a keystore file or seed:NAME:I ({exc})") from None


@app.command("init")
def init(
    minter: str = typer.Option(
        ..., "--minter", help="The minter: an address, a keystore file or seed:NAME:I (devnets)."
    ),
    hub_account: list[str] = typer.Option(
        [],
        "--hub-account",
        help="A hub's account (address or spec): may resolve inference jobs (repeatable).",
    ),
    network: str = typer.Option("deai-devnet", "--network", help="The network (chain) id, 1-64 characters."),
    out: Path = typer.Option(Path("genesis.json"), "--out", "-o", help="Where to write the genesis file."),
    min_stake: list[str] = typer.Option(
        [], "--min-stake", help="ROLE=AMOUNT, the least stake of a role (repeatable)."
    ),
    setting: list[str] = typer.Option(
        [], "--set", help="FIELD=JSON for any other NetworkConfig field, e.g. unbonding_delay_ms=60000."
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
) -> None:
    """Write a genesis file: the network id, the minter, the hubs allowed to resolve inference jobs
    and the parameters (stakes, unbonding delay, slashing, windows); print its hash."""
    from deai.core.errors import DeaiError
    from deai.ledger.config import ROLES, NetworkConfig

    if out.exists() and not force:
        raise UsageError(f"{out} exists; refusing to overwrite a genesis file (--force to replace it)")
    fields: dict[str, Any] = {"minter": _address(minter), "network": network}
    if hub_account:
        fields["resolvers"] = [_address(a) for a in hub_account]
    stakes = dict(NetworkConfig(minter=fields["minter"]).min_stake)
    for item in min_stake:
        role, _, amount = item.partition("=")
        if role not in ROLES:
            raise UsageError(
                f"--min-stake: unknown role {role!r}{did_you_mean(role, ROLES)}; roles: {', '.join(ROLES)}"
            )
        if not amount.isdigit():
            raise UsageError(f"--min-stake {item!r}: give ROLE=AMOUNT with a whole amount")
        stakes[role] = int(amount)
    fields["min_stake"] = stakes
    known = set(NetworkConfig.__dataclass_fields__)
    for item in setting:
        name, eq, raw = item.partition("=")
        if not eq or name not in known:
            raise UsageError(f"--set {item!r}: unknown field {name!r}{did_you_mean(name, known)}")
        try:
            fields[name] = json.loads(raw)
        except json.JSONDecodeError:
            fields[name] = raw  # a bare string
    try:
        config = NetworkConfig.from_dict(fields)
    except DeaiError as exc:
        raise UsageError(str(exc)) from None
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    typer.echo(f"wrote {out}: network {config.network}, minter {config.minter}")
    typer.echo(f"genesis hash {config.genesis_hash}")
    if not config.resolvers:
        typer.echo("note: no --hub-account: paid inference needs the hub's account as a resolver")


@app.command("status")
def status(
    hub: str = typer.Option(..., "--hub", help="The hub's URL."),
    wait: float = typer.Option(
        3.0, "--wait", help="Seconds to wait for the hub to answer (it may be starting)."
    ),
) -> None:
    """The network a hub serves: its id, genesis hash, the hub's account, the minter, the ledger's
    height; waits up to ``--wait`` seconds for the hub to answer."""
    from deai.cli.common import connect, probe_hub
    from deai.ledger.config import NetworkConfig

    probe_hub(hub, timeout=wait)
    client = connect(hub)
    info = client.info()
    config = NetworkConfig.from_dict(info["config"])
    head = client.query("head")
    typer.echo(f"network      {config.network}")
    typer.echo(f"genesis hash {config.genesis_hash}")
    typer.echo(f"hub account  {info['coordinator']}")
    typer.echo(f"minter       {config.minter}")
    typer.echo(f"height       {head['height']}")
