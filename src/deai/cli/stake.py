"""``deai stake|unstake|withdraw``: an account's role stakes on a hub's ledger.

A role stake (``data_provider``, ``compute_provider`` or ``host``) is what lets an account join tasks
and be drawn for jobs; the genesis fixes each role's minimum (``deai account show ADDRESS --hub URL``
shows it). Unstaked funds wait the network's unbonding delay, then ``withdraw`` returns them. A
stake that backs a task membership or a committed job cannot be unstaked until those end.
"""

from __future__ import annotations

from pathlib import Path

import typer

from deai.cli.common import connect, load_account, password_file_option, password_option
from deai.cli.errors import UsageError, did_you_mean

__all__ = ["stake", "unstake", "withdraw"]

AccountOpt = typer.Option(
    ..., "--account", help="The staking account: address, keystore file or seed:NAME:I."
)
HubOpt = typer.Option(..., "--hub", help="The hub's URL.")
RoleOpt = typer.Option(..., "--role", help="data_provider, compute_provider or host.")


def _role(role: str) -> str:
    from deai.ledger.config import ROLES

    if role not in ROLES:
        raise UsageError(f"unknown role {role!r}{did_you_mean(role, ROLES)}; roles: {', '.join(ROLES)}")
    return role


def _send(hub: str, account: str, password: str | None, password_file: Path | None, tx) -> tuple:
    signer = load_account(account, password, password_file)
    client = connect(hub, signer)
    client.send_tx(signer, tx)
    return client, signer


def stake(
    role: str = RoleOpt,
    amount: int = typer.Option(..., "--amount", min=1, help="How much to add to the role's stake."),
    account: str = AccountOpt,
    hub: str = HubOpt,
    password: str | None = password_option,
    password_file: Path | None = password_file_option,
) -> None:
    """Move ``--amount`` from the balance into the account's stake in ``--role``."""
    from deai.ledger.txs import Stake

    client, signer = _send(hub, account, password, password_file, Stake(role=_role(role), amount=amount))
    total = client.query("stake", address=signer.address, role=role)
    typer.echo(f"{signer.address} staked {amount:,} as {role}: stake {total:,}")


def unstake(
    role: str = RoleOpt,
    amount: int = typer.Option(..., "--amount", min=1, help="How much of the role's stake to unbond."),
    account: str = AccountOpt,
    hub: str = HubOpt,
    password: str | None = password_option,
    password_file: Path | None = password_file_option,
) -> None:
    """Unbond ``--amount`` of the role's stake; `deai withdraw` after the unbonding delay."""
    from deai.ledger.txs import Unstake

    client, signer = _send(hub, account, password, password_file, Unstake(role=_role(role), amount=amount))
    delay = client.info()["config"]["unbonding_delay_ms"]
    total = client.query("stake", address=signer.address, role=role)
    typer.echo(
        f"{signer.address} unstaked {amount:,} as {role} (stake left {total:,}); withdraw it after"
        f" {delay / 1000:g} s with `deai withdraw --role {role}`"
    )


def withdraw(
    role: str = RoleOpt,
    account: str = AccountOpt,
    hub: str = HubOpt,
    password: str | None = password_option,
    password_file: Path | None = password_file_option,
) -> None:
    """Return the role's unbonded funds to the balance (after the unbonding delay)."""
    from deai.ledger.txs import Withdraw

    client, signer = _send(hub, account, password, password_file, Withdraw(role=_role(role)))
    typer.echo(f"{signer.address} withdrew: balance {client.query('balance', address=signer.address):,}")
