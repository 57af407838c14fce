"""``deai node``: run a participant daemon for one or more accounts and roles."""

from __future__ import annotations

from pathlib import Path

import typer

__all__ = ["app", "node"]


def node(
    hub_url: str = typer.Option(..., "--hub", help="The hub's URL, e.g. http://127.0.0.1:8700."),
    roles: list[str] = typer.Option(
        ..., "--role", help="data_provider, compute_provider or host (repeatable)."
    ),
    accounts: list[str] = typer.Option(
        ..., "--accounts", help="seed:NAME:I[-J] or keystore files (repeatable)."
    ),
    state: Path = typer.Option(..., "--state", help="The daemon's folder (memory, job inputs)."),
    data: Path | None = typer.Option(None, "--data", help="Data folder: ADDRESS.npz per data provider."),
    behaviour: list[str] = typer.Option([], "--behaviour", help="ADDRESS=NAME: an adversarial behaviour."),
    ca: str | None = typer.Option(None, "--ca", help="CA certificate file to trust for an HTTPS hub."),
) -> None:
    """Run the roles for the accounts until interrupted; a restart resumes from --state."""
    from deai.node.process import parse_accounts, serve_node

    accts = parse_accounts(accounts)
    behaviours = dict(b.split("=", 1) for b in behaviour)
    serve_node(
        hub_url, {r: accts for r in roles}, state, data_dir=data, behaviours=behaviours, verify=ca or True
    )


app = typer.Typer(add_completion=False)
app.command()(node)

if __name__ == "__main__":  # pragma: no cover
    app()
