"""``deai hub``: run a hub (ledger service, blob relay, task coordination) over HTTP(S)."""

from __future__ import annotations

from pathlib import Path

import typer

from deai.ledger.errors import LedgerError

__all__ = ["app", "hub"]


def hub(
    folder: Path = typer.Option(
        ..., "--dir", help="The hub's folder: ledger, blobs, state (created if new)."
    ),
    account: str = typer.Option(
        ...,
        "--account",
        help="The hub's coordinator account: seed:NAME:I, an address (its keystore in $DEAI_HOME/keys)"
        " or a keystore file.",
    ),
    genesis: Path | None = typer.Option(None, "--genesis", help="Network config JSON for a new ledger."),
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8700, "--port", help="0 picks a free port (written to DIR/hub.url)."),
    tls_cert: str | None = typer.Option(None, "--tls-cert", help="Serve HTTPS with this certificate file."),
    tls_key: str | None = typer.Option(None, "--tls-key", help="The certificate's private key file."),
    log_level: str = typer.Option(
        "info", "--log-level", help="debug, info, warning or error (debug adds tracebacks)."
    ),
    log_format: str = typer.Option(
        "text", "--log-format", help="text (one line per event) or json (JSON lines)."
    ),
    rpc: str | None = typer.Option(
        None, "--rpc", help="The ledger is an EVM contract on this JSON-RPC chain (deai chain start)."
    ),
    ledger_address: str | None = typer.Option(
        None, "--ledger-address", help="With --rpc: the network's Ledger contract (deai chain deploy)."
    ),
) -> None:
    """Serve a hub until interrupted (SIGINT/SIGTERM); restart it on the same folder to resume.

    The hub signs a checkpoint of its ledger with its account after every batch and refuses to
    start on a ledger file that does not match it (edited, rewritten, truncated): it exits 1 with
    one line naming the fault."""
    from deai.core.logs import configure
    from deai.node.launch.serve import serve_hub

    try:
        configure(log_level, log_format)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None

    from deai.cli.common import load_account
    from deai.cli.errors import UsageError
    from deai.cli.network import read_genesis
    from deai.node.launch.chain import ChainRef

    try:  # run as `python -m deai.cli.hub` too: the user's mistakes are one line here as well
        acct = load_account(account)
        config = read_genesis(genesis) if genesis is not None else None
        if (rpc is None) != (ledger_address is None):
            raise UsageError("--rpc and --ledger-address go together (deploy with `deai chain deploy`)")
        chain = ChainRef(rpc, ledger_address) if rpc is not None and ledger_address is not None else None
        known = (folder / "genesis.json") if chain is not None else (folder / "ledger.sqlite")
        if config is None and not known.exists():
            raise UsageError(
                f"{folder} holds no ledger yet: start the hub with --genesis FILE"
                " (write one with `deai network init`, docs/deploy.md)"
            )
    except UsageError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    try:
        serve_hub(
            folder,
            acct,
            genesis=config,
            host=host,
            port=port,
            ssl_certfile=tls_cert,
            ssl_keyfile=tls_key,
            chain=chain,
        )
    except LedgerError as exc:  # a ledger it must not serve: one line, no traceback
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


app = typer.Typer(add_completion=False)
app.command()(hub)

if __name__ == "__main__":  # pragma: no cover
    app()
